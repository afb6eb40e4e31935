//! The password rules an account's password must follow (GB/T 22239 level 3: complexity), and
//! the Chinese reason a password breaks them.

/// Longest password (argon2 takes any length; this bounds the work an attacker can ask for).
pub const MAX_PASSWORD: usize = 256;

/// What a password must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters.
    pub min_length: usize,
    /// Fewest of the four classes (lower-case letters, upper-case letters, digits, others).
    pub min_classes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 10,
            min_classes: 3,
        }
    }
}

impl PasswordPolicy {
    /// Why `password` may not be `username`'s, if it may not.
    pub fn refusal(&self, username: &str, password: &str) -> Option<String> {
        let length = password.chars().count();
        if length < self.min_length {
            return Some(format!("密码至少 {} 个字符", self.min_length));
        }
        if length > MAX_PASSWORD {
            return Some(format!("密码至多 {MAX_PASSWORD} 个字符"));
        }
        let classes = [
            password.chars().any(|c| c.is_ascii_lowercase()),
            password.chars().any(|c| c.is_ascii_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_ascii_alphanumeric()),
        ]
        .into_iter()
        .filter(|&present| present)
        .count();
        if classes < self.min_classes {
            return Some(format!(
                "密码须包含小写字母、大写字母、数字、其他符号中的至少 {} 类",
                self.min_classes
            ));
        }
        let name = username.to_lowercase();
        if name.chars().count() >= 3 && password.to_lowercase().contains(&name) {
            return Some("密码不能包含用户名".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_refuse_short_simple_and_name_bearing_passwords() {
        let policy = PasswordPolicy::default();
        assert!(policy.refusal("siming", "11111111").is_some());
        assert!(policy.refusal("siming", "password").is_some());
        assert!(policy.refusal("siming", "passwordpassword").is_some());
        assert!(policy.refusal("siming", "Siming-2026-x").is_some());
        assert!(policy.refusal("siming", &"Aa1-".repeat(65)).is_some());
        assert_eq!(policy.refusal("siming", "zhzj-demo-2026"), None);
        assert_eq!(policy.refusal("siming", "Xiamen2026ok"), None);
        let refusal = policy.refusal("siming", "abcdefghijk").unwrap_or_default();
        assert!(refusal.contains("至少 3 类"), "{refusal}");
    }

    #[test]
    fn the_rules_are_configurable() {
        let lax = PasswordPolicy {
            min_length: 4,
            min_classes: 1,
        };
        assert_eq!(lax.refusal("siming", "abcd"), None);
        assert!(lax.refusal("siming", "abc").is_some());
    }
}
