//! The three provider formats, as their documentation gives them: the request each
//! expects and the replies (answers and errors) each sends.

use kerno_core::config::AiProvider;
use serde_json::{Value, json};

/// One HTTP request, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Full URL.
    pub url: String,
    /// Headers, the secret ones included (never print them as they are).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
}

/// The headers whose values are secret.
pub fn is_secret_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-api-key") || name.eq_ignore_ascii_case("authorization")
}

/// The API path of each provider.
pub fn path(p: AiProvider) -> &'static str {
    match p {
        AiProvider::Anthropic => "/v1/messages",
        AiProvider::Openai => "/v1/chat/completions",
        AiProvider::Ollama => "/api/chat",
    }
}

/// The URL to call: `endpoint` (or the provider's default) with the API path, unless the
/// endpoint already ends with it. For OpenAI-compatible servers an endpoint ending in
/// `/v1` gets `/chat/completions`.
pub fn url(p: AiProvider, endpoint: Option<&str>) -> String {
    let base = endpoint
        .unwrap_or(p.default_endpoint())
        .trim_end_matches('/');
    let path = path(p);
    if base.ends_with(path) || (p == AiProvider::Openai && base.ends_with("/chat/completions")) {
        base.to_string()
    } else if p == AiProvider::Openai && base.ends_with("/v1") {
        format!("{base}/chat/completions")
    } else {
        format!("{base}{path}")
    }
}

/// The request for `p`.
pub fn request(
    p: AiProvider,
    endpoint: Option<&str>,
    model: &str,
    max_tokens: u32,
    system: &str,
    user: &str,
    key: Option<&str>,
) -> Request {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    let body = match p {
        AiProvider::Anthropic => {
            if let Some(k) = key {
                headers.push(("x-api-key".into(), k.into()));
            }
            headers.push(("anthropic-version".into(), "2023-06-01".into()));
            json!({
                "model": model,
                "max_tokens": max_tokens,
                "system": system,
                "messages": [{"role": "user", "content": user}],
            })
        }
        AiProvider::Openai => {
            if let Some(k) = key {
                headers.push(("authorization".into(), format!("Bearer {k}")));
            }
            // `max_tokens`: the name every OpenAI-compatible server (vLLM, llama.cpp,
            // LiteLLM, Ollama's /v1) accepts; OpenAI's newer `max_completion_tokens` is not.
            json!({
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "max_tokens": max_tokens,
            })
        }
        AiProvider::Ollama => json!({
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "stream": false,
            "options": {"num_predict": max_tokens},
        }),
    };
    Request {
        url: url(p, endpoint),
        headers,
        body: body.to_string(),
    }
}

/// A reply that is not an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyError {
    /// One line: status, the provider's error type and message.
    pub message: String,
    /// Worth trying again (429 other than an exhausted quota, 5xx, 529).
    pub retry: bool,
}

/// The answer in a reply with HTTP `status` and `body`, or why there is none.
pub fn parse(p: AiProvider, status: u16, body: &str) -> Result<String, ReplyError> {
    let name = p.name();
    let v: Result<Value, _> = serde_json::from_str(body);
    if !(200..300).contains(&status) {
        let retryable = matches!(status, 429 | 500 | 502 | 503 | 504 | 529);
        let (kind, msg) = match &v {
            Ok(v) => error_fields(p, v),
            Err(_) => (String::new(), String::new()),
        };
        // OpenAI: an exhausted quota is a 429 that no retry fixes.
        let retry = retryable && kind != "insufficient_quota";
        let detail = match (kind.is_empty(), msg.is_empty()) {
            (true, true) => "no error body".to_string(),
            (false, true) => kind,
            (true, false) => msg,
            (false, false) => format!("{kind}: {msg}"),
        };
        return Err(ReplyError {
            message: format!("{name} answered HTTP {status} ({})", one_line(&detail)),
            retry,
        });
    }
    let v = v.map_err(|e| ReplyError {
        message: format!("{name} answered with a body that is not JSON ({e})"),
        retry: false,
    })?;
    let malformed = |what: &str| ReplyError {
        message: format!("{name}'s reply has no {what}, as its API documents it"),
        retry: false,
    };
    let text = match p {
        AiProvider::Anthropic => {
            if v.get("type").and_then(Value::as_str) == Some("error") {
                let (k, m) = error_fields(p, &v);
                return Err(ReplyError {
                    message: format!("{name} returned an error ({k}: {})", one_line(&m)),
                    retry: k == "overloaded_error" || k == "api_error",
                });
            }
            let blocks = v
                .get("content")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("`content` array"))?;
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        }
        AiProvider::Openai => {
            let msg = v
                .get("choices")
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .and_then(|c| c.get("message"))
                .ok_or_else(|| malformed("`choices[0].message`"))?;
            if let Some(r) = msg.get("refusal").and_then(Value::as_str) {
                return Err(ReplyError {
                    message: format!("{name}: the model refused ({})", one_line(r)),
                    retry: false,
                });
            }
            msg.get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("`choices[0].message.content`"))?
                .to_string()
        }
        AiProvider::Ollama => {
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(ReplyError {
                    message: format!("{name} returned an error ({})", one_line(e)),
                    retry: false,
                });
            }
            v.get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("`message.content`"))?
                .to_string()
        }
    };
    if text.trim().is_empty() {
        return Err(ReplyError {
            message: format!("{name} answered with an empty text"),
            retry: false,
        });
    }
    Ok(text)
}

/// `(type or code, message)` of an error body.
fn error_fields(p: AiProvider, v: &Value) -> (String, String) {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    match p {
        AiProvider::Anthropic => {
            let e = v.get("error");
            (
                s(e.and_then(|e| e.get("type"))),
                s(e.and_then(|e| e.get("message"))),
            )
        }
        AiProvider::Openai => {
            let e = v.get("error");
            let code = s(e.and_then(|e| e.get("code")));
            let kind = if code.is_empty() {
                s(e.and_then(|e| e.get("type")))
            } else {
                code
            };
            (kind, s(e.and_then(|e| e.get("message"))))
        }
        AiProvider::Ollama => (String::new(), s(v.get("error"))),
    }
}

/// At most 200 characters, on one line.
fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > 200 {
        format!("{}…", flat.chars().take(200).collect::<String>())
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            url(AiProvider::Anthropic, None),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url(AiProvider::Openai, Some("http://vllm:8000/v1/")),
            "http://vllm:8000/v1/chat/completions"
        );
        assert_eq!(
            url(AiProvider::Openai, Some("http://llama:8080")),
            "http://llama:8080/v1/chat/completions"
        );
        assert_eq!(
            url(AiProvider::Ollama, Some("http://10.0.0.1:11434/api/chat")),
            "http://10.0.0.1:11434/api/chat"
        );
    }

    #[test]
    fn errors_are_one_line_and_classified() {
        let e = parse(
            AiProvider::Openai,
            429,
            r#"{"error":{"message":"You exceeded your quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        )
        .unwrap_err();
        assert!(!e.retry, "{e:?}");
        let e = parse(
            AiProvider::Anthropic,
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .unwrap_err();
        assert!(e.retry && e.message.contains("overloaded_error"), "{e:?}");
        let e = parse(AiProvider::Ollama, 200, "{not json").unwrap_err();
        assert!(e.message.contains("not JSON"), "{e:?}");
    }
}
