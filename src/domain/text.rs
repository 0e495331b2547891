//! Splitting long texts into ordered parts that fit a channel's per-message limit.
//!
//! Connect accepts 1..=1024 characters per chat message, WhatsApp 4096 per text, so a long
//! customer text is sent to the agent as several messages (and vice versa). Limits count
//! Unicode scalar values (`char`s), as Connect does.

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
/// * nothing at a hard split (a word longer than the limit), which cuts between characters.
///
/// So: every part is non-empty, has no leading/trailing whitespace, and joining the parts
/// with the dropped runs (or nothing at hard splits) gives back `text.trim()`.
///
/// Where: at the last whitespace run that starts within the limit, preferring a run
/// containing a newline if it lies in the second half of the window (paragraph breaks read
/// better than mid-sentence cuts, but not at the price of tiny parts). A hard split avoids
/// cutting before a combining mark, variation selector, emoji modifier or after a
/// zero-width joiner, and between the two halves of a flag, when it can do so within the
/// second half of the window.
///
/// `max_chars == 0` is treated as 1. Whitespace-only text gives no parts.
pub fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let max = max_chars.max(1);
    let chars: Vec<char> = text.trim().chars().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let rest = &chars[start..];
        if rest.len() <= max {
            parts.push(rest.iter().collect());
            break;
        }
        let (end, next) = split_point(rest, max);
        parts.push(rest[..end].iter().collect());
        start += next;
    }
    parts
}

/// For `rest` (non-empty, starting and ending with non-whitespace, longer than `max`):
/// the end of the part and the start of the next one (they differ by the dropped run).
fn split_point(rest: &[char], max: usize) -> (usize, usize) {
    let mut last_run = None;
    let mut last_newline_run = None;
    let mut i = 1;
    while i <= max {
        if rest[i].is_whitespace() {
            // rest[i - 1] is not whitespace: `i` starts a run (runs are skipped whole).
            let mut j = i;
            let mut has_newline = false;
            while rest[j].is_whitespace() {
                has_newline |= rest[j] == '\n';
                j += 1; // in bounds: `rest` ends with non-whitespace
            }
            last_run = Some((i, j));
            if has_newline {
                last_newline_run = Some((i, j));
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    match (last_newline_run, last_run) {
        (Some((s, e)), _) if s * 2 >= max => (s, e),
        (_, Some(run)) => run,
        _ => {
            let end = hard_split(rest, max);
            (end, end)
        }
    }
}

/// Cut position for a run of `max`+ non-whitespace characters: `max`, moved back (not below
/// half the window) while it would separate a character from what visually belongs to it.
fn hard_split(rest: &[char], max: usize) -> usize {
    let floor = (max / 2).max(1);
    let mut end = max;
    while end > floor && !is_cluster_boundary(rest, end) {
        end -= 1;
    }
    if is_cluster_boundary(rest, end) {
        end
    } else {
        max
    }
}

/// Approximates a grapheme cluster boundary between `chars[at - 1]` and `chars[at]`.
fn is_cluster_boundary(chars: &[char], at: usize) -> bool {
    const ZWJ: char = '\u{200D}';
    let (prev, next) = (chars[at - 1], chars[at]);
    if prev == ZWJ || is_extend(next) {
        return false;
    }
    if is_regional_indicator(prev) && is_regional_indicator(next) {
        // Flags are pairs: a boundary only after an even number of indicators.
        let run = chars[..at]
            .iter()
            .rev()
            .take_while(|c| is_regional_indicator(**c))
            .count();
        return run % 2 == 0;
    }
    true
}

fn is_extend(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'     // combining diacritical marks
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200D}'                // zero-width joiner
        | '\u{20D0}'..='\u{20FF}'   // combining marks for symbols (keycap)
        | '\u{FE00}'..='\u{FE0F}'   // variation selectors
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}' // emoji skin tone modifiers
        | '\u{E0020}'..='\u{E007F}' // tag characters (subdivision flags)
        | '\u{E0100}'..='\u{E01EF}')
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, max: usize) -> Vec<String> {
        let parts = split_text(text, max);
        check(text, max, &parts);
        parts
    }

    /// The documented guarantees, for any input.
    fn check(text: &str, max: usize, parts: &[String]) {
        let max = max.max(1);
        let orig: Vec<char> = text.trim().chars().collect();
        let mut cur = 0;
        for (n, part) in parts.iter().enumerate() {
            let p: Vec<char> = part.chars().collect();
            assert!(!p.is_empty(), "empty part {n}");
            assert!(p.len() <= max, "part {n} has {} > {max} chars", p.len());
            assert!(!p[0].is_whitespace() && !p[p.len() - 1].is_whitespace());
            assert_eq!(
                &orig[cur..cur + p.len()],
                &p[..],
                "part {n} is not next in text"
            );
            let part_start = cur;
            cur += p.len();
            if n + 1 < parts.len() {
                let gap_start = cur;
                while orig[cur].is_whitespace() {
                    cur += 1;
                }
                if cur == gap_start {
                    // Hard split: only allowed when no whitespace fits in the window.
                    let window_end = (part_start + max + 1).min(orig.len());
                    assert!(
                        !orig[part_start..window_end]
                            .iter()
                            .any(|c| c.is_whitespace()),
                        "hard split at part {n} although whitespace fits"
                    );
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
        // When no boundary exists in the second half, cut at the limit anyway.
        let marks = format!("a{}", "\u{301}".repeat(9));
        assert_eq!(split(&marks, 4).len(), 3);
    }

    #[test]
    fn long_realistic_text() {
        let sentence = "Hola, necesito ayuda con mi pedido número 12345, llegó roto. ";
        let text = format!("{}\n\n{}", sentence.repeat(15), sentence.repeat(20));
        let parts = split(&text, CONNECT_MESSAGE_MAX_CHARS);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].ends_with("roto."));
    }

    /// Deterministic pseudo-random generator (xorshift64*), no extra dependencies.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

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
        "👨\u{200D}👩\u{200D}👧",
        " ",
        " ",
        " ",
        "\n",
        "\n\n",
        "\t",
        "  ",
        "\u{3000}",
        "\r\n",
        "palabra",
        "supercalifragilisticoespialidoso",
    ];

    #[test]
    fn property_many_generated_texts() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..3000 {
            let pieces = rng.below(400);
            let mut text = String::new();
            for _ in 0..pieces {
                // Occasionally a long word, to force hard splits.
                if rng.below(50) == 0 {
                    text.push_str(&"w".repeat(rng.below(40) + 1));
                } else {
                    text.push_str(PIECES[rng.below(PIECES.len())]);
                }
            }
            let max = match case % 6 {
                0 => 1,
                1 => 2,
                2 => 3 + rng.below(10),
                3 => 10 + rng.below(100),
                4 => CONNECT_MESSAGE_MAX_CHARS,
                _ => rng.below(60),
            };
            let parts = split_text(&text, max);
            check(&text, max, &parts);
            if text.trim().chars().count() <= max.max(1) {
                assert!(parts.len() <= 1);
            }
        }
    }

    #[test]
    fn property_whitespace_heavy_texts() {
        let mut rng = Rng(42);
        for _ in 0..1000 {
            let mut text = String::new();
            for _ in 0..rng.below(200) {
                text.push_str(if rng.below(3) == 0 {
                    "x"
                } else {
                    [" ", "\n", "\t"][rng.below(3)]
                });
            }
            let max = 1 + rng.below(8);
            check(&text, max, &split_text(&text, max));
        }
    }
}
