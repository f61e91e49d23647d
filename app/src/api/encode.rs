//! Percent-encoding for the URLs the browser builds: query values and the login page's
//! `next`. Plain Rust, shared by both sides and tested natively.

/// A query value, percent-encoded: letters, digits and `-._~` pass as they
/// are, every other byte of the UTF-8 becomes `%XX`.
pub fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(percent_encode("ada lovelace"), "ada%20lovelace");
        assert_eq!(percent_encode("a+b&c=d/e"), "a%2Bb%26c%3Dd%2Fe");
        assert_eq!(percent_encode("zoë"), "zo%C3%AB");
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(percent_encode(""), "");
    }
}
