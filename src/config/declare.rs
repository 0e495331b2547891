//! The machinery behind [`settings!`]: what one declaration expands to, the table entry
//! every generated piece reads, and the checks declarations name.
//!
//! A declaration lists, per setting, its raw type (what a flag, a variable or a file key
//! holds), optionally a checked type and the check that turns one into the other, its
//! variable, whether it is required, optional or has a default, and its documentation
//! (the doc comment). From one block the macro generates:
//!
//! * the raw struct: one `Option<raw>` field per setting, with the clap flag
//!   (`--key-with-dashes`), the environment variable and the help text (doc comment plus
//!   default), and serde for the TOML file key (`key`);
//! * the checked struct: one field per setting, default applied, check passed
//!   (`Option<_>` for optional settings);
//! * `Raw::check(&self) -> Result<Checked, ConfigError>`;
//! * a `const` table of [`SettingSpec`]s, which the README table is rendered from.

use super::ConfigError;

/// What happens when a setting is not given anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Start-up stops with [`ConfigError::Missing`].
    Required,
    /// The checked value is `None`.
    Optional,
    /// The declared default is used.
    Defaulted,
}

/// One declared setting, as the help text, the README and the error messages show it.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    /// Field name and TOML file key, e.g. `inbound_queue_url`.
    pub key: &'static str,
    /// Environment variable, e.g. `WACONNECT_INBOUND_QUEUE_URL`.
    pub env: &'static str,
    /// The doc comment as written (one `\n`-terminated line per `///` line).
    pub doc: &'static str,
    pub presence: Presence,
    /// How the README shows the default, when the declaration says (`shown "..."`).
    pub shown: Option<&'static str>,
    /// The default value in backticks, for defaulted settings without `shown`.
    pub default_value: Option<fn() -> String>,
}

impl SettingSpec {
    /// The command-line flag: `--` and the key with `-` for `_`.
    pub fn flag(&self) -> String {
        format!("--{}", self.key.replace('_', "-"))
    }

    /// The doc comment on one line.
    pub fn summary(&self) -> String {
        self.doc
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The default as the README table shows it: `required`, `none`, or the value.
    pub fn default_text(&self) -> String {
        if let Some(shown) = self.shown {
            return shown.to_string();
        }
        match (self.presence, self.default_value) {
            (Presence::Required, _) => "required".to_string(),
            (Presence::Optional, _) | (Presence::Defaulted, None) => "none".to_string(),
            (Presence::Defaulted, Some(value)) => value(),
        }
    }

    /// `--help` text: the summary and the default (or `[required]`).
    pub fn help(&self) -> String {
        match self.presence {
            Presence::Required => format!("{} [required]", self.summary()),
            Presence::Optional => self.summary(),
            Presence::Defaulted => format!(
                "{} [default: {}]",
                self.summary(),
                self.default_text().replace('`', "")
            ),
        }
    }

    pub(crate) fn missing(&self) -> ConfigError {
        ConfigError::Missing {
            key: self.key,
            flag: self.key.replace('_', "-"),
            env: self.env.to_string(),
            hint: " (or the key in --config FILE)",
        }
    }

    pub(crate) fn invalid(&self, reason: String) -> ConfigError {
        ConfigError::Invalid {
            key: self.key,
            reason,
        }
    }
}

/// The help text of the setting `key` in `specs` (used by the generated clap attributes).
pub fn help_for(specs: &[SettingSpec], key: &str) -> String {
    specs
        .iter()
        .find(|s| s.key == key)
        .map(SettingSpec::help)
        .unwrap_or_default()
}

/// Values that count as "not given" although present: an empty or blank string, as an
/// unset variable in a manifest usually is.
pub trait Blank {
    fn is_blank(&self) -> bool;
}

impl Blank for String {
    fn is_blank(&self) -> bool {
        self.trim().is_empty()
    }
}

macro_rules! never_blank {
    ($($t:ty),*) => { $(impl Blank for $t { fn is_blank(&self) -> bool { false } })* };
}
never_blank!(bool, u16, u32, u64, usize, i64, f64);

/// A default written as a literal of a close type: `"text"` for a `String` setting.
pub trait DefaultInto<T> {
    fn default_into(self) -> T;
}

impl<T> DefaultInto<T> for T {
    fn default_into(self) -> T {
        self
    }
}

impl DefaultInto<String> for &str {
    fn default_into(self) -> String {
        self.to_string()
    }
}

/// Checks a declaration may name after `via`: each turns the raw value into the checked
/// one or says why it cannot (the key is added by the caller).
pub mod checks {
    use std::time::Duration;

    use crate::domain::UrlAllowlist;

    /// Numbers that must not be 0.
    pub fn positive<T: PartialEq + Default>(v: T) -> Result<T, String> {
        if v == T::default() {
            Err("must be greater than 0".into())
        } else {
            Ok(v)
        }
    }

    /// Numbers within `lo..=hi`.
    pub fn in_range<T>(lo: T, hi: T) -> impl Fn(T) -> Result<T, String>
    where
        T: PartialOrd + std::fmt::Display + Copy,
    {
        move |v| {
            if lo <= v && v <= hi {
                Ok(v)
            } else {
                Err(format!("{v} is outside {lo}..={hi}"))
            }
        }
    }

    /// Seconds, 0 allowed.
    pub fn secs(v: u64) -> Result<Duration, String> {
        Ok(Duration::from_secs(v))
    }

    /// Seconds, more than 0.
    pub fn positive_secs(v: u64) -> Result<Duration, String> {
        positive(v).map(Duration::from_secs)
    }

    /// Milliseconds, more than 0.
    pub fn positive_millis(v: u64) -> Result<Duration, String> {
        positive(v).map(Duration::from_millis)
    }

    /// Text with surrounding whitespace removed.
    pub fn trimmed(v: String) -> Result<String, String> {
        Ok(v.trim().to_string())
    }

    /// An SQS queue URL.
    pub fn queue_url(v: String) -> Result<String, String> {
        let url = v.trim().to_string();
        if url.starts_with("https://") || url.starts_with("http://") {
            Ok(url)
        } else {
            Err("must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)".into())
        }
    }

    /// An SNS topic ARN.
    pub fn topic_arn(v: String) -> Result<String, String> {
        let arn = v.trim().to_string();
        if arn.starts_with("arn:") {
            Ok(arn)
        } else {
            Err("must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)".into())
        }
    }

    /// An SQS FIFO queue URL (its name ends in `.fifo`).
    pub fn fifo_queue_url(v: String) -> Result<String, String> {
        let url = queue_url(v)?;
        if url.ends_with(".fifo") {
            Ok(url)
        } else {
            Err("must be an SQS FIFO queue URL (its name ends in .fifo)".into())
        }
    }

    /// Attempts of a failed step: more than the failed calls in a row that mark a
    /// dependency down, so that a lone customer's messages, all the traffic during an
    /// outage, are recognised as held by an outage before their attempts run out.
    pub fn retry_attempts(v: u32) -> Result<u32, String> {
        let down_after = crate::delivery::dependency::DOWN_AFTER;
        if v > down_after {
            Ok(v)
        } else {
            Err(format!(
                "must be above {down_after}, the failed calls in a row that mark a dependency down"
            ))
        }
    }

    /// A language code as Transcribe takes it (`en-US`).
    pub fn language_code(v: String) -> Result<String, String> {
        crate::ports::LanguageCode::parse(v.trim())
            .map(|c| c.to_string())
            .map_err(|e| e.to_string())
    }

    /// A comma-separated list of language codes for identification (two or more, one
    /// dialect per language).
    pub fn language_list(v: String) -> Result<String, String> {
        let codes: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        crate::ports::Language::identify(&codes, None)
            .map(|_| codes.join(","))
            .map_err(|e| e.to_string())
    }

    /// A URL allowlist that [`UrlAllowlist::parse`] accepts (kept as written).
    pub fn url_allowlist(v: String) -> Result<String, String> {
        UrlAllowlist::parse(&v).map(|_| v)
    }
}

/// Declares a group of settings; see the module docs of [`crate::config`] for the syntax
/// and how to add a setting.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $Raw:ident => $Checked:ident, $SPECS:ident {
            $(
                $(#[doc = $doc:literal])*
                $key:ident : $raw:ty $(=> $val:ty, via $check:expr)?,
                    env $env:literal, $presence:ident $(($default:expr))? $(, shown $shown:literal)?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, clap::Args, serde::Serialize, serde::Deserialize)]
        pub struct $Raw {
            $(
                $(#[doc = $doc])*
                #[arg(long, env = $env,
                      help = $crate::config::declare::help_for($SPECS, stringify!($key)))]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $key: Option<$raw>,
            )*
        }

        /// The checked values of
        #[doc = concat!("[`", stringify!($Raw), "`]")]
        /// (defaults applied).
        #[derive(Debug, Clone)]
        pub struct $Checked {
            $(
                $(#[doc = $doc])*
                pub $key: settings!(@type $presence, $raw $(, $val)?),
            )*
        }

        /// The declarations of
        #[doc = concat!("[`", stringify!($Raw), "`]")]
        /// in order: the README table and the help texts come from here.
        pub const $SPECS: &[$crate::config::declare::SettingSpec] = &[
            $(
                $crate::config::declare::SettingSpec {
                    key: stringify!($key),
                    env: $env,
                    doc: concat!($($doc, "\n",)*),
                    presence: settings!(@presence $presence),
                    shown: settings!(@shown $($shown)?),
                    default_value: settings!(@default_value $($default)?),
                },
            )*
        ];

        impl $Raw {
            /// Applies the defaults and runs the checks; the first failure is returned.
            pub fn check(&self) -> Result<$Checked, $crate::config::ConfigError> {
                #[allow(unused_variables)]
                let mut specs = $SPECS.iter();
                Ok($Checked {
                    $(
                        $key: {
                            let spec = specs.next().expect("one spec per field");
                            let check = settings!(@check $($check)?);
                            settings!(@resolve spec, check, self.$key.clone(),
                                      $presence $(($default))?)
                        },
                    )*
                })
            }
        }
    };

    (@type optional, $raw:ty) => { Option<$raw> };
    (@type optional, $raw:ty, $val:ty) => { Option<$val> };
    (@type $p:ident, $raw:ty) => { $raw };
    (@type $p:ident, $raw:ty, $val:ty) => { $val };

    (@presence required) => { $crate::config::declare::Presence::Required };
    (@presence optional) => { $crate::config::declare::Presence::Optional };
    (@presence default) => { $crate::config::declare::Presence::Defaulted };

    (@shown) => { None };
    (@shown $shown:literal) => { Some($shown) };

    (@default_value) => { None };
    (@default_value $default:expr) => {
        Some((|| format!("`{}`", $default)) as fn() -> String)
    };

    (@check) => { |v| Ok::<_, String>(v) };
    (@check $check:expr) => { $check };

    (@resolve $spec:ident, $check:ident, $given:expr, required) => {{
        use $crate::config::declare::Blank;
        let given = $given.filter(|v| !v.is_blank()).ok_or_else(|| $spec.missing())?;
        $check(given).map_err(|reason| $spec.invalid(reason))?
    }};
    (@resolve $spec:ident, $check:ident, $given:expr, optional) => {{
        use $crate::config::declare::Blank;
        match $given.filter(|v| !v.is_blank()) {
            Some(given) => Some($check(given).map_err(|reason| $spec.invalid(reason))?),
            None => None,
        }
    }};
    (@resolve $spec:ident, $check:ident, $given:expr, default($default:expr)) => {{
        use $crate::config::declare::DefaultInto;
        let given = $given.unwrap_or_else(|| ($default).default_into());
        $check(given).map_err(|reason| $spec.invalid(reason))?
    }};
}

pub(crate) use settings;
