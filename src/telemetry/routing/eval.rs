//! Evaluating a parsed condition against one message, with IoT Hub's
//! semantics: a comparison of different types, a missing property, or a
//! function given the wrong type is *undefined*; `AND`, `OR` and `NOT` are
//! three-valued; a route matches only when its condition is `true`
//! (undefined and null are false). The message is read in place: strings
//! are borrowed from it, and only functions that make text (`LOWER`,
//! `CONCAT`, ...) allocate.

use std::borrow::Cow;

use serde_json::Value;

use super::condition::{ArithOp, CompareOp, Expr, Function, Lit, Step, SystemProperty};

/// What a condition can read of a message. Built by the routing stage over
/// the message it holds; nothing here owns data.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    pub device_id: &'a str,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    /// RFC 3339.
    pub enqueued_time: &'a str,
    /// Application properties (the topic's property bag), enrichments
    /// included.
    pub properties: &'a [(String, String)],
    /// The parsed body: `Some` only when [`body_is_routable`] held and it
    /// parsed as JSON.
    pub body: Option<&'a Value>,
    /// The device's twin document (`{tags, properties: {desired,
    /// reported}}`) for `$twin` paths and enrichments; `None`: no twin.
    pub twin: Option<&'a Value>,
}

/// IoT Hub evaluates `$body` only when the content type is
/// `application/json` and the encoding UTF-8 (either in any case). Anything
/// else, including a missing encoding, leaves `$body` undefined: the pitfall
/// docs/telemetry.md describes.
pub fn body_is_routable(content_type: Option<&str>, content_encoding: Option<&str>) -> bool {
    content_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        && content_encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("utf-8"))
}

/// Why `$body` was not evaluated for this message, for the route's and the
/// message's diagnostics; `None` when it was.
pub fn why_body_not_evaluated(view: &MessageView) -> Option<String> {
    if view.body.is_some() {
        return None;
    }
    Some(match (view.content_type, view.content_encoding) {
        (None, _) => "the message has no content type ($contentType): set it to \
                      application/json and the encoding to utf-8"
            .into(),
        (Some(t), _) if !t.trim().eq_ignore_ascii_case("application/json") => {
            format!("the content type is `{t}`, not application/json")
        }
        (Some(_), None) => "the message has no content encoding ($contentEncoding): set it \
                            to utf-8"
            .into(),
        (Some(_), Some(e)) if !e.trim().eq_ignore_ascii_case("utf-8") => {
            format!("the content encoding is `{e}`, not utf-8")
        }
        _ => "the body is not valid JSON".into(),
    })
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Array(&'a [Value]),
    Object(&'a serde_json::Map<String, Value>),
}

impl<'a> Val<'a> {
    fn of_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Val::Undefined, Val::Num),
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(a) => Val::Array(a),
            Value::Object(o) => Val::Object(o),
        }
    }

    fn num(n: f64) -> Val<'a> {
        if n.is_finite() {
            Val::Num(n)
        } else {
            Val::Undefined
        }
    }
}

/// Whether `expr` is true for the message.
pub fn matches(expr: &Expr, msg: &MessageView) -> bool {
    eval(expr, msg) == Val::Bool(true)
}

/// Evaluate `expr` against the message.
pub fn eval<'a>(expr: &'a Expr, msg: &MessageView<'a>) -> Val<'a> {
    match expr {
        Expr::Lit(l) => match l {
            Lit::Null => Val::Null,
            Lit::Bool(b) => Val::Bool(*b),
            Lit::Num(n) => Val::Num(*n),
            Lit::Str(s) => Val::Str(Cow::Borrowed(s)),
        },
        Expr::System(p) => {
            let v = match p {
                SystemProperty::ContentType => msg.content_type,
                SystemProperty::ContentEncoding => msg.content_encoding,
                SystemProperty::ConnectionDeviceId => Some(msg.device_id),
                SystemProperty::EnqueuedTime => Some(msg.enqueued_time),
            };
            v.map_or(Val::Undefined, |s| Val::Str(Cow::Borrowed(s)))
        }
        Expr::App(name) => msg
            .properties
            .iter()
            .find(|(k, _)| k.as_str() == &**name)
            .map_or(Val::Undefined, |(_, v)| Val::Str(Cow::Borrowed(v))),
        Expr::Body(path) => body(msg.body, path),
        Expr::Twin(path) => body(msg.twin, path),
        Expr::Not(e) => match eval(e, msg) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Undefined,
        },
        Expr::Neg(e) => match eval(e, msg) {
            Val::Num(n) => Val::Num(-n),
            _ => Val::Undefined,
        },
        Expr::And(a, b) => match eval(a, msg) {
            Val::Bool(false) => Val::Bool(false),
            left => match (left, eval(b, msg)) {
                (_, Val::Bool(false)) => Val::Bool(false),
                (Val::Bool(true), Val::Bool(true)) => Val::Bool(true),
                _ => Val::Undefined,
            },
        },
        Expr::Or(a, b) => match eval(a, msg) {
            Val::Bool(true) => Val::Bool(true),
            left => match (left, eval(b, msg)) {
                (_, Val::Bool(true)) => Val::Bool(true),
                (Val::Bool(false), Val::Bool(false)) => Val::Bool(false),
                _ => Val::Undefined,
            },
        },
        Expr::Compare(op, a, b) => {
            // SPEC §14: the content type and encoding compare without case.
            let fold = [a, b].iter().any(|e| {
                matches!(
                    ***e,
                    Expr::System(SystemProperty::ContentType | SystemProperty::ContentEncoding)
                )
            });
            compare(*op, &eval(a, msg), &eval(b, msg), fold)
        }
        Expr::Arith(op, a, b) => match (eval(a, msg), eval(b, msg)) {
            (Val::Num(x), Val::Num(y)) => match op {
                ArithOp::Add => Val::num(x + y),
                ArithOp::Sub => Val::num(x - y),
                ArithOp::Mul => Val::num(x * y),
                ArithOp::Div if y != 0.0 => Val::num(x / y),
                ArithOp::Rem if y != 0.0 => Val::num(x % y),
                _ => Val::Undefined,
            },
            _ => Val::Undefined,
        },
        Expr::Call(f, args) => call(*f, args, msg),
    }
}

/// The value at `path` below `root` (the body or the twin document).
fn body<'a>(root: Option<&'a Value>, path: &[Step]) -> Val<'a> {
    let Some(mut v) = root else {
        return Val::Undefined;
    };
    for step in path {
        let next = match (step, v) {
            (Step::Key(k), Value::Object(o)) => o.get(&**k),
            (Step::Index(i), Value::Array(a)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return Val::Undefined,
        }
    }
    Val::of_json(v)
}

fn compare(op: CompareOp, a: &Val, b: &Val, fold_case: bool) -> Val<'static> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) if fold_case => Some(
            x.bytes()
                .map(|c| c.to_ascii_lowercase())
                .cmp(y.bytes().map(|c| c.to_ascii_lowercase())),
        ),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            Some(x.cmp(y))
        }
        (Val::Null, Val::Null) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            Some(Ordering::Equal)
        }
        _ => None,
    };
    let Some(ord) = ord else {
        return Val::Undefined;
    };
    Val::Bool(match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
    })
}

fn call<'a>(f: Function, args: &'a [Expr], msg: &MessageView<'a>) -> Val<'a> {
    let arg = |i: usize| args.get(i).map_or(Val::Undefined, |e| eval(e, msg));
    let x = arg(0);
    let is = |b: bool| Val::Bool(b);
    let num1 = |g: fn(f64) -> f64| match &x {
        Val::Num(n) => Val::num(g(*n)),
        _ => Val::Undefined,
    };
    let strs = |y: Val<'a>, g: fn(&str, &str) -> Val<'static>| match (&x, &y) {
        (Val::Str(a), Val::Str(b)) => g(a, b),
        _ => Val::Undefined,
    };
    match f {
        Function::IsDefined => is(x != Val::Undefined),
        Function::IsNull => is(x == Val::Null),
        Function::IsBool => is(matches!(x, Val::Bool(_))),
        Function::IsNumber => is(matches!(x, Val::Num(_))),
        Function::IsString => is(matches!(x, Val::Str(_))),
        Function::IsObject => is(matches!(x, Val::Object(_))),
        Function::IsArray => is(matches!(x, Val::Array(_))),
        Function::AsNumber => match &x {
            Val::Num(n) => Val::Num(*n),
            Val::Str(s) => s.trim().parse::<f64>().map_or(Val::Undefined, Val::num),
            _ => Val::Undefined,
        },
        Function::Contains => strs(arg(1), |a, b| Val::Bool(a.contains(b))),
        Function::StartsWith => strs(arg(1), |a, b| Val::Bool(a.starts_with(b))),
        Function::EndsWith => strs(arg(1), |a, b| Val::Bool(a.ends_with(b))),
        Function::IndexOf => strs(arg(1), |a, b| {
            Val::Num(a.find(b).map_or(-1.0, |i| a[..i].chars().count() as f64))
        }),
        Function::Lower => match x {
            Val::Str(s) => Val::Str(Cow::Owned(s.to_lowercase())),
            _ => Val::Undefined,
        },
        Function::Upper => match x {
            Val::Str(s) => Val::Str(Cow::Owned(s.to_uppercase())),
            _ => Val::Undefined,
        },
        Function::Length => match &x {
            Val::Str(s) => Val::Num(s.chars().count() as f64),
            _ => Val::Undefined,
        },
        Function::Substring => match (&x, arg(1), arg(2)) {
            (Val::Str(s), Val::Num(start), Val::Num(len)) if start >= 0.0 && len >= 0.0 => {
                let text: String = s.chars().skip(start as usize).take(len as usize).collect();
                Val::Str(Cow::Owned(text))
            }
            _ => Val::Undefined,
        },
        Function::Concat => {
            let mut out = String::new();
            for e in args {
                match eval(e, msg) {
                    Val::Str(s) => out.push_str(&s),
                    _ => return Val::Undefined,
                }
            }
            Val::Str(Cow::Owned(out))
        }
        Function::Abs => num1(f64::abs),
        Function::Ceiling => num1(f64::ceil),
        Function::Floor => num1(f64::floor),
        Function::Sign => num1(|n| if n == 0.0 { 0.0 } else { n.signum() }),
        Function::Sqrt => num1(f64::sqrt),
        Function::Square => num1(|n| n * n),
        Function::Exp => num1(f64::exp),
        Function::Power => match (&x, arg(1)) {
            (Val::Num(a), Val::Num(b)) => Val::num(a.powf(b)),
            _ => Val::Undefined,
        },
    }
}
