//! Language detection for events without `lang` (SPEC §3): the detected
//! language stands in for `lang:` filters and for `~`, never for the
//! `lang` an alert shows.
//!
//! `whatlang` (trigrams and scripts, no model files) reads the title and
//! the start of the body: a few kilobytes settle the language of a news
//! article, and bounding them bounds the cost per event. The result is an
//! ISO 639-1 code (`whatlang` names ISO 639-3 ones), so it compares with
//! `lang:ru` as a `lang` field would.
//!
//! Invariant: pure and total: any text gives a code or `None`, never a
//! panic.

/// How much of the body is read, in bytes (cut at a char boundary).
pub const SAMPLE_BYTES: usize = 1024;

/// The language of an event's text as an ISO 639-1 code, or `None` when
/// the text has too few letters to tell.
pub fn detect(title: &str, body: &str) -> Option<&'static str> {
    let mut end = body.len().min(SAMPLE_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let mut sample = String::with_capacity(title.len() + 1 + end);
    sample.push_str(title);
    sample.push('\n');
    sample.push_str(&body[..end]);
    let info = whatlang::detect(&sample)?;
    iso639_1(info.lang())
}

/// `whatlang`'s languages by their ISO 639-1 code (Mandarin as `zh`,
/// Persian as `fa`, Bokmål as `nb`).
fn iso639_1(l: whatlang::Lang) -> Option<&'static str> {
    use whatlang::Lang::*;
    Some(match l {
        Epo => "eo",
        Eng => "en",
        Rus => "ru",
        Cmn => "zh",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Ben => "bn",
        Fra => "fr",
        Deu => "de",
        Ukr => "uk",
        Kat => "ka",
        Ara => "ar",
        Hin => "hi",
        Jpn => "ja",
        Heb => "he",
        Yid => "yi",
        Pol => "pl",
        Amh => "am",
        Jav => "jv",
        Kor => "ko",
        Nob => "nb",
        Dan => "da",
        Swe => "sv",
        Fin => "fi",
        Tur => "tr",
        Nld => "nl",
        Hun => "hu",
        Ces => "cs",
        Ell => "el",
        Bul => "bg",
        Bel => "be",
        Mar => "mr",
        Kan => "kn",
        Ron => "ro",
        Slv => "sl",
        Hrv => "hr",
        Srp => "sr",
        Mkd => "mk",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tam => "ta",
        Vie => "vi",
        Urd => "ur",
        Tha => "th",
        Guj => "gu",
        Uzb => "uz",
        Pan => "pa",
        Aze => "az",
        Ind => "id",
        Tel => "te",
        Pes => "fa",
        Mal => "ml",
        Ori => "or",
        Mya => "my",
        Nep => "ne",
        Sin => "si",
        Khm => "km",
        Tuk => "tk",
        Aka => "ak",
        Zul => "zu",
        Sna => "sn",
        Afr => "af",
        Lat => "la",
        Slk => "sk",
        Cat => "ca",
        Tgl => "tl",
        Hye => "hy",
        Cym => "cy",
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_four_languages() {
        let table = [
            (
                "Lavrov warns of consequences",
                "Russian Foreign Minister Sergei Lavrov said on Tuesday that the drills \
                 would have consequences for the security of the region.",
                Some("en"),
            ),
            (
                "Лавров предупредил о последствиях",
                "Министр иностранных дел России Сергей Лавров заявил во вторник, что \
                 учения будут иметь последствия для безопасности региона.",
                Some("ru"),
            ),
            (
                "라브로프, 결과 경고",
                "세르게이 라브로프 러시아 외무장관은 화요일 이번 훈련이 지역 안보에 \
                 영향을 미칠 것이라고 말했다.",
                Some("ko"),
            ),
            (
                "ラブロフ外相が警告",
                "ロシアのラブロフ外相は火曜日、演習が地域の安全保障に影響を及ぼすと述べた。",
                Some("ja"),
            ),
            ("", "", None),
            ("12345", "!!! ???", None),
        ];
        for (title, body, expected) in table {
            assert_eq!(detect(title, body), expected, "{title:?}");
        }
    }

    #[test]
    fn every_language_has_a_two_letter_code() {
        for &l in whatlang::Lang::all() {
            let code = iso639_1(l).expect("mapped");
            assert_eq!(code.len(), 2, "{l:?}");
        }
    }

    #[test]
    fn reads_a_bounded_sample_at_char_boundaries() {
        let body = "ж".repeat(SAMPLE_BYTES);
        let _ = detect("", &body);
        let body = format!("a{}", "ж".repeat(SAMPLE_BYTES));
        let _ = detect("", &body);
    }
}
