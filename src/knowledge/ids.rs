//! Ids that parse once: a finding code and a source id are checked against
//! the knowledge when it loads, then passed around as these types (a code
//! the rules name is a constant; one the files name shares their text), so
//! a bare string cannot stand in for one. Cloning never allocates.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone)]
enum Text {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Text {
    fn as_str(&self) -> &str {
        match self {
            Text::Static(text) => text,
            Text::Shared(text) => text,
        }
    }
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Text);

        impl $name {
            /// One the code names (a rule's finding): no allocation.
            pub const fn from_static(text: &'static str) -> Self {
                Self(Text::Static(text))
            }

            /// One read from a file (once, as the knowledge loads).
            pub fn new(text: &str) -> Self {
                Self(Text::Shared(Arc::from(text)))
            }

            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// Named by the code rather than read from a file.
            pub fn is_static(&self) -> bool {
                matches!(self.0, Text::Static(_))
            }
        }

        impl From<&'static str> for $name {
            fn from(text: &'static str) -> Self {
                Self::from_static(text)
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl Hash for $name {
            // As str hashes, so that maps keyed by it answer a &str.
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok(Self::new(&text))
            }
        }
    };
}

id_type!(
    /// A finding code ("leg-swelling"): findings.json defines each one;
    /// start-up refuses a file or a rule that names another.
    FindingCode
);

id_type!(
    /// A source id ("wells-2003"): sources.json defines each one; start-up
    /// refuses a file that cites another.
    SourceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_and_a_parsed_code_are_the_same_code() {
        let parsed: FindingCode = serde_json::from_str("\"leg-pain\"").unwrap();
        assert_eq!(parsed, FindingCode::from_static("leg-pain"));
        assert_eq!(parsed, "leg-pain");
        let mut map = std::collections::HashMap::new();
        map.insert(parsed, 1);
        assert_eq!(map.get("leg-pain"), Some(&1));
        assert_eq!(
            serde_json::to_string(&FindingCode::from_static("x")).unwrap(),
            "\"x\""
        );
    }
}
