//! The README's settings tables are rendered from the declarations; these tests keep them
//! equal, and hold every declaration to the naming convention.
//!
//! `WACONNECT_UPDATE_README=1 cargo test --lib config::readme` rewrites the tables.

use std::collections::HashSet;

use clap::CommandFactory;

use super::{SettingSpec, AWS_SETTINGS, BEHAVIOUR_SETTINGS};

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

/// The tables between these markers are generated.
const BEGIN: &str = "<!-- settings:begin (generated from src/config/settings.rs) -->";
const END: &str = "<!-- settings:end -->";

fn table(specs: &[SettingSpec]) -> String {
    let mut out = String::from(
        "| flag / file key | environment variable | default | meaning |\n|---|---|---|---|\n",
    );
    for s in specs {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            s.flag(),
            s.env,
            s.default_text(),
            s.summary().replace('|', "\\|"),
        ));
    }
    out
}

/// What belongs between the markers.
fn generated() -> String {
    format!(
        "{BEGIN}\n\nWhere the AWS resources are (`waconnect run` only):\n\n{}\nBehaviour and media (`waconnect run` and `waconnect local`, which stores media under\n`--data-dir` instead of S3):\n\n{}\n{END}",
        table(AWS_SETTINGS),
        table(BEHAVIOUR_SETTINGS),
    )
}

#[test]
fn readme_table_matches_the_declarations() {
    let readme = std::fs::read_to_string(README).unwrap();
    let (Some(start), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the markers {BEGIN} ... {END}");
    };
    let current = &readme[start..end + END.len()];
    let wanted = generated();
    if current == wanted {
        return;
    }
    if std::env::var_os("WACONNECT_UPDATE_README").is_some() {
        let updated = format!("{}{wanted}{}", &readme[..start], &readme[end + END.len()..]);
        std::fs::write(README, updated).unwrap();
        return;
    }
    panic!(
        "README.md settings tables differ from src/config/settings.rs; rerun with \
         WACONNECT_UPDATE_README=1 to rewrite them. Wanted:\n{wanted}"
    );
}

#[test]
fn every_setting_follows_the_naming_convention() {
    let mut keys = HashSet::new();
    for s in AWS_SETTINGS.iter().chain(BEHAVIOUR_SETTINGS) {
        assert!(keys.insert(s.key), "{} declared twice", s.key);
        assert_eq!(
            s.env,
            format!("WACONNECT_{}", s.key.to_ascii_uppercase()),
            "variable of {}",
            s.key
        );
        assert!(!s.summary().is_empty(), "{} has no doc comment", s.key);
        assert!(
            s.presence != super::Presence::Defaulted || s.default_text() != "none",
            "{} has a default the README cannot show",
            s.key
        );
    }
}

/// The clap side: each declaration is a flag of `run` with its variable and help text,
/// and the behaviour ones are flags of `local` too.
#[test]
fn every_setting_is_a_flag_with_its_variable() {
    let cli = crate::cli::Cli::command();
    for (command, specs) in [
        ("run", [AWS_SETTINGS, BEHAVIOUR_SETTINGS].concat()),
        ("local", BEHAVIOUR_SETTINGS.to_vec()),
    ] {
        let sub = cli.find_subcommand(command).unwrap();
        for s in specs {
            let arg = sub
                .get_arguments()
                .find(|a| a.get_id() == s.key)
                .unwrap_or_else(|| panic!("{command} has no argument {}", s.key));
            assert_eq!(
                format!("--{}", arg.get_long().unwrap()),
                s.flag(),
                "{}",
                s.key
            );
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(s.env),
                "{}",
                s.key
            );
            let help = arg.get_help().unwrap().to_string();
            assert!(help.starts_with(&s.summary()), "{}: {help}", s.key);
            assert_eq!(help, s.help(), "{}", s.key);
        }
    }
}
