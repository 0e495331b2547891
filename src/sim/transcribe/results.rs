//! What a finished simulated transcription answers: the text (configured, or a sentence
//! naming the audio's duration), the language, and the TranscriptEvents that carry them
//! the way Transcribe does: one result per sentence, each first as a partial (the first
//! half of its words) and then final, with word items spread over the audio's time.

use serde_json::{json, Value};

use super::frames;
use super::TranscribeSetting;

/// The default transcript: names the duration so tests can check the bytes were
/// counted.
pub fn default_transcript(seconds: f64) -> String {
    format!("simulated transcript of {seconds:.1} seconds of audio")
}

/// The language the results carry: for identification, the configured one if the
/// request offered it, else the first option; for a fixed language, that language.
pub fn answer_language(
    setting: &TranscribeSetting,
    fixed: Option<&str>,
    options: &[String],
) -> Option<String> {
    if let Some(code) = fixed {
        return Some(code.to_string());
    }
    match &setting.language_code {
        Some(code) if options.contains(code) => Some(code.clone()),
        _ => options.first().cloned(),
    }
}

/// The text cut into sentences (after `.`, `?` or `!` followed by a space).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next_is_space = chars.get(i + 1).is_some_and(|&(_, n)| n.is_whitespace());
        if matches!(c, '.' | '?' | '!') && next_is_space {
            let end = at + c.len_utf8();
            out.push(text[start..end].trim());
            start = end;
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// The events to send once the audio has ended, and how many final results they hold.
/// `seconds` is the audio's duration; `identified` the options with the chosen language
/// first, for LanguageIdentification scores (empty for a fixed language).
pub fn transcript_events(
    text: &str,
    seconds: f64,
    language: Option<&str>,
    identified: &[String],
) -> (Vec<bytes::Bytes>, u32) {
    let segments = sentences(text);
    let total_chars: usize = segments.iter().map(|s| s.chars().count()).sum();
    let mut events = Vec::new();
    let mut finals = 0;
    let mut start = 0.0;
    for segment in segments {
        let share = segment.chars().count() as f64 / total_chars.max(1) as f64;
        let end = (start + seconds * share).min(seconds);
        let id = uuid::Uuid::new_v4().to_string();
        let words: Vec<&str> = segment.split_whitespace().collect();
        let half = words[..words.len().div_ceil(2)].join(" ");
        let partial = result(
            &id,
            &half,
            start,
            start + (end - start) / 2.0,
            true,
            None,
            &[],
        );
        events.push(frames::transcript_event(vec![partial]));
        let done = result(&id, segment, start, end, false, language, identified);
        events.push(frames::transcript_event(vec![done]));
        finals += 1;
        start = end;
    }
    (events, finals)
}

fn result(
    id: &str,
    text: &str,
    start: f64,
    end: f64,
    partial: bool,
    language: Option<&str>,
    identified: &[String],
) -> Value {
    let words: Vec<&str> = text.split_whitespace().collect();
    let step = (end - start) / words.len().max(1) as f64;
    let items: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            json!({
                "StartTime": round(start + step * i as f64),
                "EndTime": round(start + step * (i + 1) as f64),
                "Type": "pronunciation",
                "Content": word,
                "VocabularyFilterMatch": false,
                "Confidence": 0.99,
                "Stable": !partial,
            })
        })
        .collect();
    let mut result = json!({
        "ResultId": id,
        "StartTime": round(start),
        "EndTime": round(end),
        "IsPartial": partial,
        "Alternatives": [{ "Transcript": text, "Items": items }],
        "ChannelId": "ch_0",
    });
    if !identified.is_empty() {
        result["LanguageCode"] = json!(language);
        // The chosen language scores highest; the others share what is left.
        let others = (identified.len() - 1).max(1) as f64;
        let scores: Vec<Value> = identified
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let score = if i == 0 { 0.9 } else { 0.1 / others };
                json!({ "LanguageCode": code, "Score": round(score) })
            })
            .collect();
        result["LanguageIdentification"] = json!(scores);
    }
    result
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_the_duration() {
        assert_eq!(
            default_transcript(3.2),
            "simulated transcript of 3.2 seconds of audio"
        );
        assert_eq!(
            default_transcript(5.04),
            "simulated transcript of 5.0 seconds of audio"
        );
    }

    #[test]
    fn sentences_split_after_end_punctuation() {
        assert_eq!(
            sentences("Hola. ¿Cómo estás? Bien!  3.5 kg"),
            vec!["Hola.", "¿Cómo estás?", "Bien!", "3.5 kg"]
        );
        assert!(sentences("   ").is_empty());
    }

    #[test]
    fn identification_prefers_the_configured_option() {
        let options = vec!["es-US".to_string(), "en-US".to_string()];
        let mut setting = TranscribeSetting {
            language_code: Some("en-US".into()),
            ..Default::default()
        };
        assert_eq!(
            answer_language(&setting, None, &options).as_deref(),
            Some("en-US")
        );
        setting.language_code = Some("pt-BR".into());
        assert_eq!(
            answer_language(&setting, None, &options).as_deref(),
            Some("es-US")
        );
        assert_eq!(
            answer_language(&setting, Some("fr-CA"), &[]).as_deref(),
            Some("fr-CA")
        );
    }

    #[test]
    fn each_sentence_is_a_partial_then_a_final_result() {
        let (events, finals) = transcript_events("One two three. Four.", 2.0, None, &[]);
        assert_eq!((events.len(), finals), (4, 2));
    }
}
