//! Percent-encoding for the URLs the browser builds: path segments, query values and the
//! login page's `next`. Plain Rust, shared by both sides and tested natively.

/// A path segment or query value, percent-encoded: letters, digits and `-._~` pass as they
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

/// `key=value&…` of a JSON object's members, values percent-encoded; `null` members are
/// left out, and anything but an object has no query. Members come in the map's order
/// (by key, as serde_json keeps them), which the server does not care about.
pub fn query_string(value: &serde_json::Value) -> String {
    let Some(members) = value.as_object() else {
        return String::new();
    };
    let mut query = String::new();
    for (key, value) in members {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(text) => percent_encode(text),
            other => percent_encode(&other.to_string()),
        };
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&percent_encode(key));
        query.push('=');
        query.push_str(&text);
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(percent_encode("ada lovelace"), "ada%20lovelace");
        assert_eq!(percent_encode("a+b&c=d/e"), "a%2Bb%26c%3Dd%2Fe");
        assert_eq!(percent_encode("zoë"), "zo%C3%AB");
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn query_strings_skip_nulls_and_encode_values() {
        assert_eq!(
            query_string(&json!({"page": 2, "per_page": 20, "q": "a&b c"})),
            "page=2&per_page=20&q=a%26b%20c"
        );
        assert_eq!(
            query_string(&json!({"page": null, "per_page": 50})),
            "per_page=50"
        );
        assert_eq!(query_string(&json!({"q": ""})), "q=");
        assert_eq!(query_string(&json!({"active": true})), "active=true");
        assert_eq!(query_string(&json!(null)), "");
        assert_eq!(query_string(&json!({})), "");
    }
}
