//! The one rule for storing and comparing names (petitioners, leaders, units, places). Names
//! are typed by hand, often in WPS or Excel with a Chinese input method, so the same name arrives
//! as "庄辉珠", "庄　辉珠" (full-width space) or "庄 辉珠", and digits or brackets full-width. Chinese names, unit names and
//! place names never contain spaces, so a name is stored and looked up in one normal form.

use unicode_normalization::UnicodeNormalization;

/// The normal form of a name: Unicode NFKC (full-width letters, digits and brackets become
/// their ordinary forms; the full-width space U+3000 becomes a plain space), whitespace
/// (`char::is_whitespace`: spaces, tabs, line breaks, no-break spaces) trimmed, and inside the
/// name removed next to a Chinese character — Chinese names have no spaces — or else collapsed to
/// one space, so that a name in Latin letters keeps its words.
///
/// `"庄　辉珠"` → `"庄辉珠"`; `" 市住房局 "` → `"市住房局"`; `"ＸＸ街道"` → `"XX街道"`;
/// `"John  Smith"` → `"John Smith"`. Other characters, such as the middle dot of transliterated
/// names ("阿依古丽·买买提"), are kept.
pub fn normalize_name(name: &str) -> String {
    let normal: Vec<char> = name.nfkc().collect();
    let mut out = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in &normal {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            let before = out.chars().last().is_some_and(is_chinese);
            let after = is_chinese(*c);
            if !(before || after) {
                out.push(' ');
            }
            pending_space = false;
        }
        out.push(*c);
    }
    out
}

/// Whether `c` is a Chinese (CJK) character or the middle dot of transliterated names.
fn is_chinese(c: char) -> bool {
    c == '·'
        || ('\u{2e80}'..='\u{9fff}').contains(&c)
        || ('\u{f900}'..='\u{faff}').contains(&c)
        || ('\u{20000}'..='\u{3134f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::normalize_name;

    #[test]
    fn inner_and_outer_whitespace_of_every_kind_goes() {
        assert_eq!(normalize_name("庄　辉珠"), "庄辉珠");
        assert_eq!(normalize_name(" 庄 辉\t珠\u{a0}"), "庄辉珠");
        assert_eq!(normalize_name("\u{3000}李明\u{3000}"), "李明");
        assert_eq!(normalize_name("思明区\r\n"), "思明区");
    }

    #[test]
    fn full_width_forms_become_ordinary_ones() {
        assert_eq!(normalize_name("ＸＭ１２３"), "XM123");
        assert_eq!(normalize_name("市住房局（本级）"), "市住房局(本级)");
        // Already normal: unchanged.
        assert_eq!(normalize_name("阿依古丽·买买提"), "阿依古丽·买买提");
        assert_eq!(normalize_name(" John \u{3000} Smith "), "John Smith");
        assert_eq!(normalize_name(""), "");
    }
}
