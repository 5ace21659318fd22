//! Route conditions (SPEC §14): IoT Hub's routing query language, parsed
//! once into an [`Expr`] tree by a small Pratt parser that keeps the byte
//! span of every token, so a syntax error points at its column.
//!
//! Precedence, loosest first: `OR`, `AND`, `NOT`, comparisons
//! (`= != <> < > <= >=`), `+ -`, `* / %`, unary `-`. Keywords and function
//! names are case-insensitive, as on IoT Hub. Strings are single- or
//! double-quoted. A bare identifier is an application property.

use std::ops::Range;

mod lexer;

use lexer::{err, Lexer, Tok};

/// A parsed condition, ready for [`super::eval`].
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Lit),
    /// A system property (`$contentType`, ...).
    System(SystemProperty),
    /// An application property (the property bag of the topic).
    App(Box<str>),
    /// `$body` and the path below it.
    Body(Box<[Step]>),
    /// `$twin.tags.*` or `$twin.properties.desired|reported.*`: the path
    /// from the twin document's root (`tags`, `properties`, ...).
    Twin(Box<[Step]>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Call(Function, Box<[Expr]>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(Box<str>),
}

/// One step of a `$body` or `$twin` path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(Box<str>),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemProperty {
    ContentType,
    ContentEncoding,
    ConnectionDeviceId,
    EnqueuedTime,
}

const SYSTEM_PROPERTIES: &[(&str, SystemProperty)] = &[
    ("contentType", SystemProperty::ContentType),
    ("contentEncoding", SystemProperty::ContentEncoding),
    ("connectionDeviceId", SystemProperty::ConnectionDeviceId),
    ("enqueuedTime", SystemProperty::EnqueuedTime),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

macro_rules! functions {
    ($($name:ident = $text:literal, $min:literal..=$max:literal;)+) => {
        /// The functions SPEC §14 lists.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Function { $($name),+ }

        const FUNCTIONS: &[(&str, Function, usize, usize)] =
            &[$(($text, Function::$name, $min, $max)),+];
    };
}

functions! {
    IsDefined = "IS_DEFINED", 1..=1;
    IsNull = "IS_NULL", 1..=1;
    IsBool = "IS_BOOL", 1..=1;
    IsNumber = "IS_NUMBER", 1..=1;
    IsString = "IS_STRING", 1..=1;
    IsObject = "IS_OBJECT", 1..=1;
    IsArray = "IS_ARRAY", 1..=1;
    AsNumber = "AS_NUMBER", 1..=1;
    Contains = "CONTAINS", 2..=2;
    StartsWith = "STARTS_WITH", 2..=2;
    EndsWith = "ENDS_WITH", 2..=2;
    Lower = "LOWER", 1..=1;
    Upper = "UPPER", 1..=1;
    Length = "LENGTH", 1..=1;
    Substring = "SUBSTRING", 3..=3;
    IndexOf = "INDEX_OF", 2..=2;
    Concat = "CONCAT", 2..=16;
    Abs = "ABS", 1..=1;
    Ceiling = "CEILING", 1..=1;
    Floor = "FLOOR", 1..=1;
    Sign = "SIGN", 1..=1;
    Sqrt = "SQRT", 1..=1;
    Square = "SQUARE", 1..=1;
    Power = "POWER", 2..=2;
    Exp = "EXP", 1..=1;
}

/// A condition that does not parse: where, what, and what would do.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Byte range in the condition text.
    pub span: Range<usize>,
    pub message: String,
    pub help: String,
    /// `ztpd::routes::<code>`.
    pub code: &'static str,
}

/// Conditions longer than this are refused: a route condition is one line
/// of an operator's file, and the bound keeps the parser's recursion (and
/// the fuzzer) shallow.
pub const MAX_CONDITION: usize = 4096;
/// Deepest nesting of parentheses, calls and operators.
const MAX_DEPTH: usize = 64;
/// Most binary operators in one condition: a chain of them nests the tree
/// too (`a AND b AND c` is `(a AND b) AND c`), and the evaluator recurses.
const MAX_OPERATORS: usize = 256;

struct Parser<'a> {
    lexer: Lexer<'a>,
    tok: Tok,
    span: Range<usize>,
    depth: usize,
    operators: usize,
    /// End of the last token taken, where a path just read ends.
    last_end: usize,
}

/// Parse one condition. `true` alone matches everything.
pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    if text.len() > MAX_CONDITION {
        return Err(err(
            0..text.len(),
            "syntax",
            format!(
                "the condition is {} bytes; at most {MAX_CONDITION} are accepted",
                text.len()
            ),
            "split it over several routes",
        ));
    }
    let mut lexer = Lexer { text, pos: 0 };
    let (tok, span) = lexer.next()?;
    let mut p = Parser {
        lexer,
        tok,
        span,
        depth: 0,
        operators: 0,
        last_end: 0,
    };
    if p.tok == Tok::End {
        return Err(err(
            0..text.len(),
            "syntax",
            "the condition is empty".into(),
            "write `true` to match every message",
        ));
    }
    let e = p.expr(0)?;
    if p.tok != Tok::End {
        return Err(p.unexpected("AND, OR, an operator or the end of the condition"));
    }
    Ok(e)
}

/// Binding power of an infix operator: (left, right).
fn infix(tok: &Tok) -> Option<(u8, u8)> {
    Some(match tok {
        Tok::Ident(w) if w.eq_ignore_ascii_case("OR") => (1, 2),
        Tok::Ident(w) if w.eq_ignore_ascii_case("AND") => (3, 4),
        Tok::Op("=" | "!=" | "<>" | "<" | ">" | "<=" | ">=") => (7, 8),
        Tok::Op("+" | "-") => (9, 10),
        Tok::Op("*" | "/" | "%") => (11, 12),
        _ => return None,
    })
}

const NOT_POWER: u8 = 5;
const NEG_POWER: u8 = 13;

impl Parser<'_> {
    fn bump(&mut self) -> Result<(Tok, Range<usize>), SyntaxError> {
        let (tok, span) = self.lexer.next()?;
        self.last_end = self.span.end;
        Ok((
            std::mem::replace(&mut self.tok, tok),
            std::mem::replace(&mut self.span, span),
        ))
    }

    /// [`Parser::unexpected`] for a token already taken.
    fn unexpected_at(&mut self, tok: Tok, span: Range<usize>, wanted: &str) -> SyntaxError {
        self.tok = tok;
        self.span = span;
        self.unexpected(wanted)
    }

    fn unexpected(&self, wanted: &str) -> SyntaxError {
        let found = match &self.tok {
            Tok::End => "the end of the condition".to_string(),
            _ => format!("`{}`", &self.lexer.text[self.span.clone()]),
        };
        // At the end: the last character written, where something is missing.
        let span = if self.span.is_empty() {
            let text = self.lexer.text.trim_end();
            let last = text.chars().next_back().map_or(0, char::len_utf8);
            text.len() - last..text.len()
        } else {
            self.span.clone()
        };
        err(
            span,
            "syntax",
            format!("expected {wanted}, found {found}"),
            "see SPEC §14 / docs/telemetry.md for the condition language",
        )
    }

    fn expr(&mut self, min: u8) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                self.span.clone(),
                "syntax",
                format!("the condition nests deeper than {MAX_DEPTH}"),
                "flatten it",
            ));
        }
        let mut left = self.prefix()?;
        while let Some((l, r)) = infix(&self.tok) {
            if l < min {
                break;
            }
            self.operators += 1;
            if self.operators > MAX_OPERATORS {
                return Err(err(
                    self.span.clone(),
                    "syntax",
                    format!("the condition has more than {MAX_OPERATORS} operators"),
                    "split it over several routes",
                ));
            }
            let (op, _) = self.bump()?;
            let right = self.expr(r)?;
            left = match op {
                Tok::Ident(w) if w.eq_ignore_ascii_case("OR") => {
                    Expr::Or(Box::new(left), Box::new(right))
                }
                Tok::Ident(_) => Expr::And(Box::new(left), Box::new(right)),
                Tok::Op(o) => binary(o, left, right),
                _ => unreachable!("infix() admits only these"),
            };
        }
        self.depth -= 1;
        Ok(left)
    }

    fn prefix(&mut self) -> Result<Expr, SyntaxError> {
        let (tok, span) = self.bump()?;
        Ok(match tok {
            Tok::Num(n) => Expr::Lit(Lit::Num(n)),
            Tok::Str(s) => Expr::Lit(Lit::Str(s)),
            Tok::LParen => {
                let e = self.expr(0)?;
                self.expect(Tok::RParen, "`)`")?;
                e
            }
            Tok::Op("-") => Expr::Neg(Box::new(self.expr(NEG_POWER)?)),
            Tok::Dollar(name) => self.dollar(&name, span)?,
            Tok::Ident(w) => self.word(w, span)?,
            other => {
                return Err(self.unexpected_at(
                    other,
                    span,
                    "a value, a property, a function or `(`",
                ))
            }
        })
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), SyntaxError> {
        if self.tok != want {
            return Err(self.unexpected(what));
        }
        self.bump()?;
        Ok(())
    }

    fn word(&mut self, w: Box<str>, span: Range<usize>) -> Result<Expr, SyntaxError> {
        let is = |k: &str| w.eq_ignore_ascii_case(k);
        if is("NOT") {
            return Ok(Expr::Not(Box::new(self.expr(NOT_POWER)?)));
        }
        if is("true") || is("false") {
            return Ok(Expr::Lit(Lit::Bool(is("true"))));
        }
        if is("null") {
            return Ok(Expr::Lit(Lit::Null));
        }
        if is("AND") || is("OR") {
            self.span = span;
            self.tok = Tok::Ident(w);
            return Err(self.unexpected("a value before it"));
        }
        if self.tok != Tok::LParen {
            return Ok(Expr::App(w));
        }
        let Some(&(_, f, min, max)) = FUNCTIONS.iter().find(|(n, ..)| is(n)) else {
            return Err(err(
                span,
                "unknown_function",
                format!("unknown function `{w}`"),
                &format!(
                    "the functions are {}",
                    FUNCTIONS.iter().map(|f| f.0).collect::<Vec<_>>().join(" ")
                ),
            ));
        };
        self.bump()?;
        let mut args = Vec::new();
        if self.tok != Tok::RParen {
            loop {
                args.push(self.expr(0)?);
                if self.tok != Tok::Comma {
                    break;
                }
                self.bump()?;
            }
        }
        let close = self.span.clone();
        self.expect(Tok::RParen, "`,` or `)`")?;
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(err(
                span.start..close.end,
                "syntax",
                format!(
                    "{} takes {want} argument(s), {} given",
                    w.to_ascii_uppercase(),
                    args.len()
                ),
                "see SPEC §14 for the functions and their arguments",
            ));
        }
        Ok(Expr::Call(f, args.into()))
    }

    fn dollar(&mut self, name: &str, span: Range<usize>) -> Result<Expr, SyntaxError> {
        if name == "body" {
            return self.body_path().map(|p| Expr::Body(p.into()));
        }
        if name == "twin" {
            let path = self.body_path()?;
            let end = self.last_end.max(span.end);
            return match twin_section(&path) {
                true => Ok(Expr::Twin(path.into())),
                false => Err(err(
                    span.start..end,
                    "twin_path",
                    "a $twin path must start with tags, properties.desired or \
                     properties.reported"
                        .into(),
                    "write e.g. $twin.tags.site or $twin.properties.reported.firmware",
                )),
            };
        }
        match SYSTEM_PROPERTIES.iter().find(|(n, _)| *n == name) {
            Some((_, p)) => Ok(Expr::System(*p)),
            None => Err(err(
                span,
                "unknown_property",
                format!("unknown system property `${name}`"),
                "the system properties are $contentType, $contentEncoding, \
                 $connectionDeviceId and $enqueuedTime; the body is $body, the twin \
                 $twin.tags.* and $twin.properties.desired|reported.*",
            )),
        }
    }

    fn body_path(&mut self) -> Result<Vec<Step>, SyntaxError> {
        let mut path = Vec::new();
        loop {
            match self.tok {
                Tok::Dot => {
                    self.bump()?;
                    match self.bump()? {
                        (Tok::Ident(k), _) => path.push(Step::Key(k)),
                        (tok, span) => {
                            return Err(self.unexpected_at(tok, span, "a field name after `.`"))
                        }
                    }
                }
                Tok::LBracket => {
                    self.bump()?;
                    match self.bump()? {
                        (Tok::Num(n), _) if n >= 0.0 && n.fract() == 0.0 => {
                            path.push(Step::Index(n as usize))
                        }
                        (Tok::Str(k), _) => path.push(Step::Key(k)),
                        (tok, span) => {
                            return Err(self.unexpected_at(
                                tok,
                                span,
                                "an index (0, 1, ...) or a 'key'",
                            ))
                        }
                    }
                    self.expect(Tok::RBracket, "`]`")?;
                }
                _ => return Ok(path),
            }
        }
    }
}

/// Whether a `$twin` path reads what IoT Hub routes on: the tags or the
/// desired or reported properties (not `deviceId`, `etag`, `$metadata`...).
fn twin_section(path: &[Step]) -> bool {
    let key = |i: usize| match path.get(i) {
        Some(Step::Key(k)) => Some(&**k),
        _ => None,
    };
    match key(0) {
        Some("tags") => true,
        Some("properties") => matches!(key(1), Some("desired" | "reported")),
        _ => false,
    }
}

/// The span of the first `$twin` in a condition that parses, for a
/// diagnostic about the route's source (which may have no twin).
pub fn twin_span(text: &str) -> Option<Range<usize>> {
    let mut lexer = Lexer { text, pos: 0 };
    loop {
        match lexer.next().ok()? {
            (Tok::End, _) => return None,
            (Tok::Dollar(name), span) if &*name == "twin" => return Some(span),
            _ => {}
        }
    }
}

fn binary(op: &str, a: Expr, b: Expr) -> Expr {
    let (a, b) = (Box::new(a), Box::new(b));
    let compare = match op {
        "=" => CompareOp::Eq,
        "!=" | "<>" => CompareOp::Ne,
        "<" => CompareOp::Lt,
        ">" => CompareOp::Gt,
        "<=" => CompareOp::Le,
        ">=" => CompareOp::Ge,
        _ => {
            let arith = match op {
                "+" => ArithOp::Add,
                "-" => ArithOp::Sub,
                "*" => ArithOp::Mul,
                "/" => ArithOp::Div,
                _ => ArithOp::Rem,
            };
            return Expr::Arith(arith, a, b);
        }
    };
    Expr::Compare(compare, a, b)
}

impl Expr {
    /// Whether evaluating this reads the body (a route says so when the
    /// body was not evaluated: the content-type pitfall).
    pub fn reads_body(&self) -> bool {
        match self {
            Expr::Body(_) => true,
            _ => self.children().any(Expr::reads_body),
        }
    }

    /// Whether evaluating this reads the device's twin (the routing stage
    /// looks the twin up only then).
    pub fn reads_twin(&self) -> bool {
        match self {
            Expr::Twin(_) => true,
            _ => self.children().any(Expr::reads_twin),
        }
    }

    /// The operands of this node.
    fn children(&self) -> impl Iterator<Item = &Expr> {
        let (pair, args): (Option<(&Expr, Option<&Expr>)>, &[Expr]) = match self {
            Expr::Lit(_) | Expr::System(_) | Expr::App(_) | Expr::Body(_) | Expr::Twin(_) => {
                (None, &[])
            }
            Expr::Not(e) | Expr::Neg(e) => (Some((e, None)), &[]),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) | Expr::Arith(_, a, b) => {
                (Some((a, Some(b))), &[])
            }
            Expr::Call(_, args) => (None, args),
        };
        pair.into_iter()
            .flat_map(|(a, b)| std::iter::once(a).chain(b))
            .chain(args.iter())
    }
}
