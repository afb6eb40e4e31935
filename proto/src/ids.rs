//! Checks for identifiers and personal-data formats that commands carry.

/// An id that may stand as one NATS subject token: 1–64 ASCII letters, digits, `-` or `_`.
pub fn is_valid_token_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates an 18-digit resident ID number (公民身份号码, GB 11643-1999): 17 digits, then a check
/// character computed with the ISO 7064 MOD 11-2 weights, and a plausible birth date.
pub fn is_valid_resident_id(id: &str) -> bool {
    if id.len() != 18 || !id.is_ascii() {
        return false;
    }
    let Some(expected) = resident_id_check_char(&id[..17]) else {
        return false;
    };
    let given = char::from(id.as_bytes()[17]).to_ascii_uppercase();
    given == expected && chrono::NaiveDate::parse_from_str(&id[6..14], "%Y%m%d").is_ok()
}

/// The check character for the first 17 digits of a resident ID number (for generating test and
/// demo data that is well-formed but belongs to nobody).
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(char::from(CHECK[(sum % 11) as usize]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_check_digit() {
        // The worked example of GB 11643-1999.
        assert!(is_valid_resident_id("11010519491231002X"));
        assert!(is_valid_resident_id("11010519491231002x"));
        assert!(!is_valid_resident_id("110105194912310021"));
        assert!(!is_valid_resident_id("1101051949123100"));
        // Right check digit, impossible birth date.
        let first17 = "35020319991399001";
        let id = format!(
            "{first17}{}",
            resident_id_check_char(first17).unwrap_or('0')
        );
        assert!(!is_valid_resident_id(&id));
        assert_eq!(resident_id_check_char("11010519491231002"), Some('X'));
    }

    #[test]
    fn token_ids() {
        assert!(is_valid_token_id("xm-siming_01"));
        assert!(!is_valid_token_id(""));
        assert!(!is_valid_token_id("a.b"));
        assert!(!is_valid_token_id("思明"));
        assert!(!is_valid_token_id(&"a".repeat(65)));
    }
}
