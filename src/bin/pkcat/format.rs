//! How a consumed record is printed: as it is (value and delimiter), through a kcat format
//! string (`-f`), or as a JSON object (`-J`).

use std::io::Write;

use purekafka::{Message, TimestampType};
use serde_json::json;

/// One piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    KeySize,
    ValueSize,
    Timestamp,
    Headers,
}

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The value, then the delimiter (`-D`); with `-K`, the key and that delimiter first.
    Plain,
    /// A format string (`-f`).
    Format(Vec<Token>),
    /// A JSON object per line (`-J`).
    Json,
}

impl Output {
    /// Parses a kcat format string; an unknown `%x` is an error naming it.
    pub fn parse(format: &str) -> Result<Output, String> {
        let bytes = unescape(format)?;
        let mut tokens = Vec::new();
        let mut text = Vec::new();
        let mut it = bytes.iter().copied();
        while let Some(b) = it.next() {
            if b != b'%' {
                text.push(b);
                continue;
            }
            let token = match it.next() {
                Some(b'%') => {
                    text.push(b'%');
                    continue;
                }
                Some(b't') => Token::Topic,
                Some(b'p') => Token::Partition,
                Some(b'o') => Token::Offset,
                Some(b'k') => Token::Key,
                Some(b's') => Token::Value,
                Some(b'K') => Token::KeySize,
                Some(b'S') => Token::ValueSize,
                Some(b'T') => Token::Timestamp,
                Some(b'h') => Token::Headers,
                Some(other) => {
                    return Err(format!(
                        "-f: %{} is not a format token (%t %p %o %k %s %K %S %T %h %%)",
                        other as char
                    ))
                }
                None => return Err("-f ends with a lone %".into()),
            };
            if !text.is_empty() {
                tokens.push(Token::Text(std::mem::take(&mut text)));
            }
            tokens.push(token);
        }
        if !text.is_empty() {
            tokens.push(Token::Text(text));
        }
        Ok(Output::Format(tokens))
    }

    /// Writes `msg` to `out`.
    pub fn write(
        &self,
        out: &mut impl Write,
        msg: &Message,
        delimiter: &[u8],
        key_delimiter: Option<&[u8]>,
    ) -> std::io::Result<()> {
        let key = msg.key.as_deref();
        let value = msg.value.as_deref();
        match self {
            Output::Plain => {
                if let Some(kd) = key_delimiter {
                    out.write_all(key.unwrap_or_default())?;
                    out.write_all(kd)?;
                }
                out.write_all(value.unwrap_or_default())?;
                out.write_all(delimiter)
            }
            Output::Json => {
                let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                let headers: Option<Vec<Option<String>>> = (!msg.headers.is_empty()).then(|| {
                    msg.headers
                        .iter()
                        .flat_map(|h| [text(Some(&h.key)), text(h.value.as_deref())])
                        .collect()
                });
                let object = json!({
                    "topic": &*msg.topic,
                    "partition": msg.partition,
                    "offset": msg.offset,
                    "tstype": match msg.timestamp_type {
                        TimestampType::CreateTime => "create",
                        TimestampType::LogAppendTime => "logappend",
                    },
                    "ts": msg.timestamp,
                    "headers": headers,
                    "key": text(key),
                    "payload": text(value),
                });
                serde_json::to_writer(&mut *out, &object)?;
                out.write_all(b"\n")
            }
            Output::Format(tokens) => {
                for token in tokens {
                    match token {
                        Token::Text(t) => out.write_all(t)?,
                        Token::Topic => out.write_all(msg.topic.as_bytes())?,
                        Token::Partition => write!(out, "{}", msg.partition)?,
                        Token::Offset => write!(out, "{}", msg.offset)?,
                        Token::Key => out.write_all(key.unwrap_or_default())?,
                        Token::Value => out.write_all(value.unwrap_or_default())?,
                        Token::KeySize => write!(out, "{}", size(key))?,
                        Token::ValueSize => write!(out, "{}", size(value))?,
                        Token::Timestamp => write!(out, "{}", msg.timestamp)?,
                        Token::Headers => {
                            for (i, h) in msg.headers.iter().enumerate() {
                                if i > 0 {
                                    out.write_all(b",")?;
                                }
                                out.write_all(&h.key)?;
                                out.write_all(b"=")?;
                                out.write_all(h.value.as_deref().unwrap_or_default())?;
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// kcat prints -1 for the size of a null key or value.
fn size(bytes: Option<&[u8]>) -> i64 {
    bytes.map_or(-1, |b| b.len() as i64)
}

/// The bytes of `text` with its backslash escapes resolved: `\n \r \t \0 \\ \xNN`.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'0') => 0,
            Some(b'\\') => b'\\',
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                std::str::from_utf8(&hex)
                    .ok()
                    .filter(|h| h.len() == 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("{text:?}: \\x takes two hex digits"))?
            }
            Some(other) => return Err(format!("{text:?}: unknown escape \\{}", other as char)),
            None => return Err(format!("{text:?} ends with a lone \\")),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"a\tb\n\x00\\").unwrap(), b"a\tb\n\0\\");
        assert!(unescape(r"\q").is_err());
        assert!(unescape(r"\x4").is_err());
    }

    #[test]
    fn format_strings() {
        assert_eq!(
            Output::parse("%t[%p]@%o: %s%%\\n").unwrap(),
            Output::Format(vec![
                Token::Topic,
                Token::Text(b"[".to_vec()),
                Token::Partition,
                Token::Text(b"]@".to_vec()),
                Token::Offset,
                Token::Text(b": ".to_vec()),
                Token::Value,
                Token::Text(b"%\n".to_vec()),
            ])
        );
        assert!(Output::parse("%z").unwrap_err().contains("%z"));
        assert!(Output::parse("50%").is_err());
    }
}
