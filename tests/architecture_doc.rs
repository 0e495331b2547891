//! docs/architecture.md stays true: its actor table names exactly the actors there are.
//! Every row's file is an actor in `src/actors/` (it implements `Actor`), every row's
//! `actor` label is one the metrics export (`waconnect::metrics::ACTORS`), and every actor
//! file and label is in the table; the actors its hop-by-hop paths name in bold are in
//! the table too.

use std::collections::BTreeSet;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Row {
    label: Option<String>,
    file: String,
}

/// The text between backticks in `cell`, if any.
fn ticked(cell: &str) -> Option<String> {
    let start = cell.find('`')? + 1;
    let end = start + cell[start..].find('`')?;
    Some(cell[start..end].to_string())
}

/// The rows of the table under "## Actors".
fn actor_table(doc: &str) -> Vec<Row> {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Actors"))
        .expect("docs/architecture.md has an \"## Actors\" section");
    let mut lines = section.lines().filter(|l| l.starts_with('|'));
    let header = lines.next().expect("a table");
    assert!(
        header.contains("actor") && header.contains("file") && header.contains("mailbox"),
        "{header}"
    );
    lines
        .filter(|l| !l.starts_with("|---"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            assert!(cells.len() >= 6, "a row of five columns: {l}");
            Row {
                label: ticked(cells[1]),
                file: ticked(cells[2]).unwrap_or_else(|| panic!("no file in: {l}")),
            }
        })
        .collect()
}

#[test]
fn the_actor_table_names_exactly_the_actors_there_are() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md")).unwrap();
    let rows = actor_table(&doc);

    let mut files_in_doc = BTreeSet::new();
    let mut labels_in_doc = BTreeSet::new();
    for row in &rows {
        let path = Path::new(ROOT).join(&row.file);
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} (named in the table): {e}", row.file));
        assert!(
            source.contains("impl Actor for"),
            "{} is not an actor",
            row.file
        );
        files_in_doc.insert(row.file.clone());
        if let Some(label) = &row.label {
            assert!(
                waconnect::metrics::ACTORS.contains(&label.as_str()),
                "`{label}` is not an actor label of src/metrics.rs ({:?})",
                waconnect::metrics::ACTORS
            );
            labels_in_doc.insert(label.clone());
        }
    }

    for label in waconnect::metrics::ACTORS {
        assert!(
            labels_in_doc.contains(label),
            "the actor `{label}` (src/metrics.rs) is missing from docs/architecture.md"
        );
    }
    let actors_dir = Path::new(ROOT).join("src/actors");
    for entry in std::fs::read_dir(&actors_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("mod.rs") {
            continue;
        }
        let file = format!("src/actors/{}", path.file_name().unwrap().to_string_lossy());
        assert!(
            files_in_doc.contains(&file),
            "{file} is missing from docs/architecture.md's actor table"
        );
    }

    // The paths name actors in bold: each must be one of the table's.
    let mut known: BTreeSet<String> = labels_in_doc.clone();
    known.insert("supervisor".into());
    known.insert("conversation".into());
    for bold in doc.split("**").skip(1).step_by(2) {
        let word = bold.trim();
        if word.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            assert!(
                known.contains(word),
                "docs/architecture.md names an actor **{word}** that is not in its table"
            );
        }
    }
}
