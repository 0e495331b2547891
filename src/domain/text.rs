//! Splitting long texts into ordered parts that fit a channel's per-message limit.
//!
//! Connect accepts 1..=1024 characters per chat message, WhatsApp 4096 per text, so a long
//! customer text is sent to the agent as several messages (and vice versa). Limits count
//! Unicode scalar values (`char`s), as Connect does.

use unicode_segmentation::UnicodeSegmentation;

/// Longest Connect chat message (text/plain and text/markdown), in characters.
pub const CONNECT_MESSAGE_MAX_CHARS: usize = 1024;

/// Splits `text` into ordered parts of 1..=`max_chars` characters each.
///
/// Exactly what is dropped:
/// * leading and trailing whitespace of the whole text;
/// * at each split made at whitespace, the **whole run of consecutive whitespace** at that
///   point (usually a single space or newline; all of "\n\n" between paragraphs). Dropping
///   the run rather than one character keeps parts from starting with whitespace or
///   consisting only of it (a blank chat bubble);
/// * nothing at a hard split (a word longer than the limit).
///
/// So: every part is non-empty, has no leading/trailing whitespace, and joining the parts
/// with the dropped runs (or nothing at hard splits) gives back `text.trim()`.
///
/// Where: at the last whitespace run that starts within the limit, preferring a run
/// containing a newline if it lies in the second half of the window (paragraph breaks read
/// better than mid-sentence cuts, but not at the price of tiny parts). A hard split is
/// made at the last grapheme cluster boundary within the limit (Unicode extended grapheme
/// clusters, UAX #29): an accent, a Thai or Indic vowel sign, an Arabic harakah, an emoji
/// modifier or ZWJ sequence and a flag stay with what they belong to. Only a single cluster
/// longer than the whole limit (hundreds of stacked marks: hostile input) is cut inside.
///
/// Whitespace means a cluster made of whitespace characters only ("\r\n" is one); a space
/// carrying a combining mark is a visible character.
///
/// `max_chars == 0` is treated as 1. Whitespace-only text gives no parts.
pub fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let max = max_chars.max(1);
    let mut rest = text.trim();
    let mut parts = Vec::new();
    while !rest.is_empty() {
        if rest.chars().nth(max).is_none() {
            parts.push(rest.to_string());
            break;
        }
        let (end, next) = split_point(rest, max);
        parts.push(rest[..end].to_string());
        rest = &rest[next..];
    }
    parts
}

fn is_whitespace(cluster: &str) -> bool {
    cluster.chars().all(char::is_whitespace)
}

/// A run of whitespace clusters: byte range and the character offset it starts at.
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    start_chars: usize,
}

/// For `rest` (starting and ending with a non-whitespace cluster, longer than `max`
/// characters): the byte offsets where the part ends and the next one starts (they differ
/// by the dropped run).
fn split_point(rest: &str, max: usize) -> (usize, usize) {
    let mut chars = 0; // characters before the current cluster
    let mut open: Option<(Run, bool)> = None; // the run being read, and whether it has a newline
    let mut last_run = None;
    let mut last_newline_run = None;
    let mut last_boundary = None; // byte offset of the last cluster boundary within the limit
    for (at, cluster) in rest.grapheme_indices(true) {
        let white = is_whitespace(cluster);
        match (&mut open, white) {
            (Some((_, newline)), true) => *newline |= cluster.contains('\n'),
            (Some((run, newline)), false) => {
                // A run is never last: `rest` ends with non-whitespace.
                let run = Run { end: at, ..*run };
                last_run = Some(run);
                if *newline {
                    last_newline_run = Some(run);
                }
                open = None;
            }
            (None, true) if chars <= max => {
                let run = Run {
                    start: at,
                    end: at,
                    start_chars: chars,
                };
                open = Some((run, cluster.contains('\n')));
            }
            (None, _) => {}
        }
        if open.is_none() && chars > max {
            break;
        }
        if at > 0 && chars <= max {
            last_boundary = Some(at);
        }
        chars += cluster.chars().count();
    }
    match (last_newline_run, last_run, last_boundary) {
        (Some(run), _, _) if run.start_chars * 2 >= max => (run.start, run.end),
        (_, Some(run), _) => (run.start, run.end),
        (_, None, Some(at)) => (at, at),
        // The first cluster alone is longer than the limit: cut it at the limit.
        (_, None, None) => {
            let at = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
            (at, at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(text: &str, max: usize) -> Vec<String> {
        let parts = split_text(text, max);
        check(text, max, &parts);
        parts
    }

    /// The documented guarantees, for any input: every part is 1..=max characters, starts
    /// and ends with a visible cluster and is the next piece of the text; only whitespace
    /// lies between parts, the whole run of it; a split without whitespace happens only
    /// when none fits and falls on a grapheme cluster boundary unless that cluster alone is
    /// longer than `max`; nothing is lost at the end.
    fn check(text: &str, max: usize, parts: &[String]) {
        let max = max.max(1);
        let orig = text.trim();
        // (byte start, byte end, chars) of every cluster of the trimmed text.
        let clusters: Vec<(usize, usize, usize)> = orig
            .grapheme_indices(true)
            .map(|(at, g)| (at, at + g.len(), g.chars().count()))
            .collect();
        let starts: std::collections::HashMap<usize, usize> =
            clusters.iter().enumerate().map(|(i, c)| (c.0, i)).collect();
        let ends: std::collections::HashMap<usize, usize> =
            clusters.iter().enumerate().map(|(i, c)| (c.1, i)).collect();
        let cluster_at = |byte: usize| starts.get(&byte).copied();
        let mut cur = 0;
        for (n, part) in parts.iter().enumerate() {
            let chars = part.chars().count();
            assert!(chars > 0, "empty part {n}");
            assert!(chars <= max, "part {n} has {chars} > {max} chars");
            assert!(
                orig[cur..].starts_with(part.as_str()),
                "part {n} is not next in text"
            );
            let part_start = cur;
            cur += part.len();
            match cluster_at(cur) {
                Some(_) => {}
                None if cur == orig.len() => {}
                None => {
                    let inside = clusters.iter().find(|c| c.0 < cur && cur < c.1).unwrap();
                    assert!(
                        inside.2 > max,
                        "part {n} cuts a cluster of {} chars",
                        inside.2
                    );
                }
            }
            if let Some(first) = cluster_at(part_start) {
                let (s, e, _) = clusters[first];
                assert!(
                    !is_whitespace(&orig[s..e]),
                    "part {n} starts with whitespace"
                );
            }
            if let Some(last) = ends.get(&cur).map(|&i| clusters[i]) {
                assert!(
                    !is_whitespace(&orig[last.0..last.1]),
                    "part {n} ends with whitespace"
                );
            }
            if n + 1 < parts.len() {
                let gap_start = cur;
                while let Some(i) = cluster_at(cur) {
                    let (s, e, _) = clusters[i];
                    if !is_whitespace(&orig[s..e]) {
                        break;
                    }
                    cur = e;
                }
                if cur == gap_start {
                    // Hard split: only allowed when no whitespace run starts in the window.
                    if let Some(first) = cluster_at(part_start) {
                        let mut offset = 0;
                        for &(s, e, c) in &clusters[first..] {
                            if offset > max {
                                break;
                            }
                            assert!(
                                offset == 0 || !is_whitespace(&orig[s..e]),
                                "hard split at part {n} although whitespace fits"
                            );
                            offset += c;
                        }
                    }
                }
            }
        }
        assert_eq!(cur, orig.len(), "text lost at the end");
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split("hola", 10), ["hola"]);
        assert_eq!(split("  hola\n", 4), ["hola"]);
        assert_eq!(split("", 10), Vec::<String>::new());
        assert_eq!(split(" \n\t ", 10), Vec::<String>::new());
    }

    #[test]
    fn splits_at_last_space_that_fits() {
        assert_eq!(split("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(split("aaa bbb ccc", 6), ["aaa", "bbb", "ccc"]);
        assert_eq!(split("aaa bbb ccc", 3), ["aaa", "bbb", "ccc"]);
        // The space right after the limit also fits (it is dropped).
        assert_eq!(split("aaaa bbbb", 4), ["aaaa", "bbbb"]);
    }

    #[test]
    fn prefers_newline_in_second_half() {
        assert_eq!(
            split("first line\nsecond part of it", 20),
            ["first line", "second part of it"]
        );
        // A newline too early loses to a later space.
        assert_eq!(split("a\nbbb ccc ddd eee", 10), ["a\nbbb ccc", "ddd eee"]);
        // "\r\n" is one cluster, and a newline.
        assert_eq!(
            split("first line\r\nsecond part", 14),
            ["first line", "second part"]
        );
    }

    #[test]
    fn drops_whole_whitespace_runs_at_splits() {
        assert_eq!(
            split("para one.\n\n\npara two.", 12),
            ["para one.", "para two."]
        );
        assert_eq!(split("aaaa\n\n\n\n\nbbbb", 4), ["aaaa", "bbbb"]);
        // Runs inside a part are kept as they are.
        assert_eq!(split("a  b  c", 100), ["a  b  c"]);
    }

    #[test]
    fn hard_splits_long_words() {
        assert_eq!(split("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(split("ab abcdefghij", 4), ["ab", "abcd", "efgh", "ij"]);
        assert_eq!(split("ñññññ", 2), ["ññ", "ññ", "ñ"]);
        assert_eq!(split("abc", 0), ["a", "b", "c"]);
    }

    #[test]
    fn counts_chars_not_bytes() {
        let text = "👍".repeat(CONNECT_MESSAGE_MAX_CHARS);
        assert_eq!(split(&text, CONNECT_MESSAGE_MAX_CHARS).len(), 1);
        let parts = split(&format!("{text}👍"), CONNECT_MESSAGE_MAX_CHARS);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], "👍");
    }

    #[test]
    fn hard_split_keeps_clusters_together() {
        // "e" + combining acute: do not separate the accent.
        assert_eq!(split("abce\u{301}fg", 4), ["abc", "e\u{301}fg"]);
        // Family emoji (ZWJ sequence): never cut right after a ZWJ.
        let fam = "👨\u{200D}👩\u{200D}👧";
        let parts = split(&format!("ab{fam}"), 5);
        assert_eq!(parts, ["ab", fam]);
        // Flags are pairs of regional indicators.
        let flags = "🇦🇷🇧🇷🇺🇾";
        assert_eq!(split(flags, 3), ["🇦🇷", "🇧🇷", "🇺🇾"]);
        // Thumbs up with skin tone.
        assert_eq!(split("abc👍🏽", 4), ["abc", "👍🏽"]);
        // A cluster longer than the limit is cut at the limit: nothing else fits.
        let marks = format!("a{}", "\u{301}".repeat(9));
        assert_eq!(split(&marks, 4).len(), 3);
    }

    /// Marks the old hand-made list did not know: Thai vowels and tone marks, Devanagari
    /// virama conjuncts and vowel signs, Arabic harakat.
    #[test]
    fn hard_split_keeps_thai_indic_and_arabic_marks() {
        // Thai: "กี่" is ก + sara ii + mai ek (3 chars, one cluster).
        assert_eq!(split("กกกี่", 4), ["กก", "กี่"]);
        // Devanagari: "क्षि" is क + virama + ष + vowel sign i (4 chars, one cluster).
        assert_eq!(split("ककक्षि", 4), ["कक", "क्षि"]);
        // Arabic: "بِّ" is ب + kasra + shadda (3 chars, one cluster).
        assert_eq!(split("ببِّب", 3), ["ب", "بِّ", "ب"]);
    }

    #[test]
    fn long_realistic_text() {
        let sentence = "Hola, necesito ayuda con mi pedido número 12345, llegó roto. ";
        let text = format!("{}\n\n{}", sentence.repeat(15), sentence.repeat(20));
        let parts = split(&text, CONNECT_MESSAGE_MAX_CHARS);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].ends_with("roto."));
    }

    /// Pieces texts are made of: scripts with combining marks, emoji sequences, every kind
    /// of whitespace run, long words that force hard splits.
    const PIECES: &[&str] = &[
        "a",
        "b",
        "xyz",
        "ñ",
        "ü",
        "語",
        "👍",
        "👍🏽",
        "🇦🇷",
        "e\u{301}",
        "a\u{301}\u{302}\u{303}",
        "👨\u{200D}👩\u{200D}👧",
        "1\u{FE0F}\u{20E3}",
        "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
        "สวัสดี",
        "กี่",
        "नमस्ते",
        "क्षि",
        "தமிழ்",
        "بِسْمِ",
        "اللّٰه",
        "한국어",
        "\u{1100}\u{1161}\u{11A8}",
        " \u{301}",
        " ",
        " ",
        " ",
        "\n",
        "\n\n",
        "\t",
        "  ",
        "\u{3000}",
        "\u{A0}",
        "\r\n",
        "palabra",
        "supercalifragilisticoespialidoso",
        "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww",
    ];

    fn texts() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::collection::vec(prop::sample::select(PIECES), 0..400)
                .prop_map(|p| p.concat()),
            1 => any::<String>(),
            1 => "[ \\n\\tx\u{301}]{0,200}",
        ]
    }

    fn limits() -> impl Strategy<Value = usize> {
        prop_oneof![
            0..4usize,
            4..64usize,
            Just(CONNECT_MESSAGE_MAX_CHARS),
            Just(4096usize),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// No split cuts a grapheme cluster (unless the cluster alone exceeds the limit),
        /// every part fits, and the parts with the dropped whitespace give back the text.
        #[test]
        fn splits_keep_clusters_fit_and_join_back(text in texts(), max in limits()) {
            let parts = split_text(&text, max);
            check(&text, max, &parts);
            if text.trim().chars().count() <= max.max(1) {
                prop_assert!(parts.len() <= 1);
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Connect's limit on realistic messages: every part within 1024 characters and no
        /// cluster ever cut (none is that long here).
        #[test]
        fn connect_parts_never_cut_a_cluster(
            pieces in prop::collection::vec(prop::sample::select(PIECES), 300..1500)
        ) {
            let text = pieces.concat();
            let parts = split_text(&text, CONNECT_MESSAGE_MAX_CHARS);
            check(&text, CONNECT_MESSAGE_MAX_CHARS, &parts);
            let boundaries: std::collections::HashSet<usize> = text
                .trim()
                .grapheme_indices(true)
                .map(|(at, _)| at)
                .collect();
            let mut at = 0;
            let trimmed = text.trim();
            for part in &parts {
                at += trimmed[at..].find(part.as_str()).unwrap();
                prop_assert!(boundaries.contains(&at));
                at += part.len();
                prop_assert!(at == trimmed.len() || boundaries.contains(&at));
                prop_assert!(part.chars().count() <= CONNECT_MESSAGE_MAX_CHARS);
            }
        }
    }
}
