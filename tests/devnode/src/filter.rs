//! Meilisearch's filter expressions, parsed and evaluated over the dev node's documents:
//! `=`, `!=`, `>`, `>=`, `<`, `<=`, `a TO b`, `IN [..]`, `NOT IN [..]`, `EXISTS`, `IS [NOT] NULL`,
//! `IS [NOT] EMPTY`, `CONTAINS`, `STARTS WITH` (each with `NOT`), `NOT`, `AND`, `OR`, parentheses.
//! `AND` binds tighter than `OR`. String equality ignores case, as facet values are normalized.

use serde_json::Value;

use crate::documents::{lookup, value_equals};
use crate::errors::ApiError;

#[derive(Clone, Debug, PartialEq)]
enum Cond {
    Eq(String),
    Cmp(&'static str, String),
    Range(String, String),
    In(Vec<String>),
    Exists,
    IsNull,
    IsEmpty,
    Contains(String),
    StartsWith(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Cond(String, Cond),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    root: Node,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A bare word or a quoted string (`true` when it was quoted).
    Word(String, bool),
    Sym(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        if let Some(sym) = ["!=", ">=", "<="].into_iter().find(|s| *s == two) {
            out.push(Tok::Sym(sym));
            i += 2;
            continue;
        }
        if let Some(sym) = ["(", ")", "[", "]", ",", "=", ">", "<"].into_iter().find(|s| s.starts_with(c)) {
            out.push(Tok::Sym(sym));
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let mut word = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("Expression `{text}` is missing a closing quote")),
                    Some('\\') if chars.get(i + 1) == Some(&c) => {
                        word.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        word.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Word(word, true));
            continue;
        }
        let mut word = String::new();
        while let Some(&w) = chars.get(i) {
            if w.is_whitespace() || "()[],=!<>\"'".contains(w) {
                break;
            }
            word.push(w);
            i += 1;
        }
        if word.is_empty() {
            return Err(format!("unexpected character `{c}`"));
        }
        out.push(Tok::Word(word, false));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w, false)) if w == k)
    }

    fn keyword_at(&self, offset: usize, k: &str) -> bool {
        matches!(self.toks.get(self.pos + offset), Some(Tok::Word(w, false)) if w == k)
    }

    fn sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    fn word(&mut self) -> Result<String, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Word(w, _)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err("expected a value".into()),
        }
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut items = vec![self.and()?];
        while self.keyword("OR") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Node::Or(items) })
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut items = vec![self.not()?];
        while self.keyword("AND") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Node::And(items) })
    }

    fn not(&mut self) -> Result<Node, String> {
        if self.keyword("NOT") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        if self.sym("(") {
            self.pos += 1;
            let inner = self.or()?;
            if !self.sym(")") {
                return Err("expected a closing parenthesis".into());
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.condition()
    }

    fn list(&mut self) -> Result<Vec<String>, String> {
        if !self.sym("[") {
            return Err("expected `[`".into());
        }
        self.pos += 1;
        let mut items = Vec::new();
        while !self.sym("]") {
            items.push(self.word()?);
            if self.sym(",") {
                self.pos += 1;
            } else if !self.sym("]") {
                return Err("expected `,` or `]`".into());
            }
        }
        self.pos += 1;
        Ok(items)
    }

    fn condition(&mut self) -> Result<Node, String> {
        let field = self.word()?;
        let negated_cond = |c: Cond| Node::Not(Box::new(Node::Cond(field.clone(), c)));
        let plain = |c: Cond| Node::Cond(field.clone(), c);
        let node = match self.peek().cloned() {
            Some(Tok::Sym("=")) => {
                self.pos += 1;
                plain(Cond::Eq(self.word()?))
            }
            Some(Tok::Sym("!=")) => {
                self.pos += 1;
                negated_cond(Cond::Eq(self.word()?))
            }
            Some(Tok::Sym(op @ (">" | ">=" | "<" | "<="))) => {
                self.pos += 1;
                plain(Cond::Cmp(op, self.word()?))
            }
            Some(Tok::Word(w, false)) => match w.as_str() {
                "IN" => {
                    self.pos += 1;
                    plain(Cond::In(self.list()?))
                }
                "EXISTS" => {
                    self.pos += 1;
                    plain(Cond::Exists)
                }
                "CONTAINS" => {
                    self.pos += 1;
                    plain(Cond::Contains(self.word()?))
                }
                "STARTS" if self.keyword_at(1, "WITH") => {
                    self.pos += 2;
                    plain(Cond::StartsWith(self.word()?))
                }
                "IS" => {
                    self.pos += 1;
                    let negated = self.keyword("NOT");
                    if negated {
                        self.pos += 1;
                    }
                    let c = if self.keyword("NULL") {
                        Cond::IsNull
                    } else if self.keyword("EMPTY") {
                        Cond::IsEmpty
                    } else {
                        return Err("expected `NULL` or `EMPTY`".into());
                    };
                    self.pos += 1;
                    if negated {
                        negated_cond(c)
                    } else {
                        plain(c)
                    }
                }
                "NOT" => {
                    self.pos += 1;
                    let c = match self.peek().cloned() {
                        Some(Tok::Word(w, false)) if w == "IN" => {
                            self.pos += 1;
                            Cond::In(self.list()?)
                        }
                        Some(Tok::Word(w, false)) if w == "EXISTS" => {
                            self.pos += 1;
                            Cond::Exists
                        }
                        Some(Tok::Word(w, false)) if w == "CONTAINS" => {
                            self.pos += 1;
                            Cond::Contains(self.word()?)
                        }
                        Some(Tok::Word(w, false)) if w == "STARTS" && self.keyword_at(1, "WITH") => {
                            self.pos += 2;
                            Cond::StartsWith(self.word()?)
                        }
                        _ => return Err("expected `IN`, `EXISTS`, `CONTAINS` or `STARTS WITH`".into()),
                    };
                    negated_cond(c)
                }
                _ => {
                    // `field low TO high`
                    let low = self.word()?;
                    if !self.keyword("TO") {
                        return Err("expected an operation".into());
                    }
                    self.pos += 1;
                    plain(Cond::Range(low, self.word()?))
                }
            },
            _ => return Err("expected an operation".into()),
        };
        Ok(node)
    }
}

fn syntax_error(text: &str) -> ApiError {
    ApiError::invalid(
        "invalid_document_filter",
        format!(
            "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`, `CONTAINS`, `NOT CONTAINS`, `STARTS WITH`, `NOT STARTS WITH`, `_geoRadius`, or `_geoBoundingBox` at `{text}`.\n1:{} {text}",
            text.chars().count() + 1
        ),
    )
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn compare(v: &Value, op: &str, bound: &str) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|i| compare(i, op, bound)),
        _ => {
            let ordering = match (number(v), bound.parse::<f64>().ok()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => match v {
                    Value::String(s) => Some(s.to_lowercase().as_str().cmp(bound.to_lowercase().as_str())),
                    _ => None,
                },
            };
            ordering.is_some_and(|o| match op {
                ">" => o.is_gt(),
                ">=" => o.is_ge(),
                "<" => o.is_lt(),
                _ => o.is_le(),
            })
        }
    }
}

fn text_test(v: &Value, test: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => test(&s.to_lowercase()),
        Value::Array(items) => items.iter().any(|i| text_test(i, test)),
        _ => false,
    }
}

/// The expression a JSON filter stands for: a string as is; an array ANDs its items, and an
/// inner array ORs its strings (Meilisearch's array syntax).
pub fn expression(v: &Value) -> Result<String, ApiError> {
    let bad = |found: &Value| {
        ApiError::invalid(
            "invalid_document_filter",
            format!("Invalid syntax for the filter parameter: `expected String, Array, found: {found}`."),
        )
    };
    let alternatives = |item: &Value| -> Result<String, ApiError> {
        match item {
            Value::String(s) => Ok(format!("({s})")),
            Value::Array(inner) => {
                let parts = inner
                    .iter()
                    .map(|i| i.as_str().map(|s| format!("({s})")).ok_or_else(|| bad(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", parts.join(" OR ")))
            }
            other => Err(bad(other)),
        }
    };
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(items) => Ok(items.iter().map(alternatives).collect::<Result<Vec<_>, _>>()?.join(" AND ")),
        other => Err(bad(other)),
    }
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, ApiError> {
        let toks = tokenize(text).map_err(|_| syntax_error(text))?;
        if toks.is_empty() {
            return Err(syntax_error(text));
        }
        let mut p = Parser { toks, pos: 0 };
        let root = p.or().map_err(|_| syntax_error(text))?;
        if p.pos != p.toks.len() {
            return Err(syntax_error(text));
        }
        Ok(Filter { root })
    }

    /// Every attribute the filter names, in order.
    pub fn fields(&self) -> Vec<&str> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
            match n {
                Node::Or(items) | Node::And(items) => items.iter().for_each(|i| walk(i, out)),
                Node::Not(inner) => walk(inner, out),
                Node::Cond(field, _) => out.push(field),
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    pub fn matches(&self, doc: &Value) -> bool {
        fn eval(n: &Node, doc: &Value) -> bool {
            match n {
                Node::Or(items) => items.iter().any(|i| eval(i, doc)),
                Node::And(items) => items.iter().all(|i| eval(i, doc)),
                Node::Not(inner) => !eval(inner, doc),
                Node::Cond(field, cond) => {
                    let v = lookup(doc, field);
                    match cond {
                        Cond::Exists => v.is_some(),
                        Cond::IsNull => v.is_some_and(Value::is_null),
                        Cond::IsEmpty => v.is_some_and(|v| match v {
                            Value::String(s) => s.is_empty(),
                            Value::Array(a) => a.is_empty(),
                            Value::Object(o) => o.is_empty(),
                            _ => false,
                        }),
                        Cond::Eq(w) => v.is_some_and(|v| value_equals(v, w)),
                        Cond::In(ws) => v.is_some_and(|v| ws.iter().any(|w| value_equals(v, w))),
                        Cond::Cmp(op, b) => v.is_some_and(|v| compare(v, op, b)),
                        Cond::Range(lo, hi) => v.is_some_and(|v| compare(v, ">=", lo) && compare(v, "<=", hi)),
                        Cond::Contains(w) => {
                            let w = w.to_lowercase();
                            v.is_some_and(|v| text_test(v, &|s| s.contains(&w)))
                        }
                        Cond::StartsWith(w) => {
                            let w = w.to_lowercase();
                            v.is_some_and(|v| text_test(v, &|s| s.starts_with(&w)))
                        }
                    }
                }
            }
        }
        eval(&self.root, doc)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn m(filter: &str, doc: Value) -> bool {
        Filter::parse(filter).unwrap().matches(&doc)
    }

    #[test]
    fn operators() {
        let doc = json!({"genre": "Drama", "year": 1999, "tags": ["a", "b"], "n": null, "e": "", "nested": {"x": 1}});
        assert!(m("genre = drama", doc.clone()));
        assert!(m("genre = 'Drama' AND year = 1999", doc.clone()));
        assert!(!m("genre != drama", doc.clone()));
        assert!(m("missing != x", doc.clone()));
        assert!(m("year > 1998 AND year >= 1999 AND year < 2000 AND year <= 1999", doc.clone()));
        assert!(m("year 1990 TO 2000", doc.clone()));
        assert!(m("tags IN [z, b]", doc.clone()) && m("genre NOT IN [comedy]", doc.clone()));
        assert!(m("n EXISTS AND n IS NULL AND e IS EMPTY AND genre IS NOT NULL", doc.clone()));
        assert!(m("missing NOT EXISTS", doc.clone()));
        assert!(m("genre CONTAINS ram AND genre STARTS WITH dr AND genre NOT CONTAINS x", doc.clone()));
        assert!(m("(genre = comedy OR year = 1999) AND NOT tags = c", doc.clone()));
        assert!(m("genre = comedy OR year = 1999 AND tags = a", doc.clone()));
        assert!(m("nested.x = 1", doc.clone()));
        assert!(m("\"genre\" = \"Drama\"", doc));
    }

    #[test]
    fn array_syntax() {
        let e = expression(&json!(["a = 1", ["b = 2", "c = 3"]])).unwrap();
        assert_eq!(e, "(a = 1) AND ((b = 2) OR (c = 3))");
        assert!(Filter::parse(&e).unwrap().matches(&json!({"a": 1, "c": 3})));
        assert_eq!(expression(&json!(3)).unwrap_err().code, "invalid_document_filter");
    }

    #[test]
    fn syntax_errors_and_fields() {
        for bad in ["genre", "genre =", "(a = 1", "a = 1 AND", "", "a IN [1", "a IS maybe", "a = 'x"] {
            assert_eq!(Filter::parse(bad).unwrap_err().code, "invalid_document_filter", "{bad}");
        }
        let f = Filter::parse("a = 1 OR (b > 2 AND NOT c EXISTS)").unwrap();
        assert_eq!(f.fields(), ["a", "b", "c"]);
    }
}
