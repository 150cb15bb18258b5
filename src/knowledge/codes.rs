//! Code systems as they appear in the wild, and code normalisation.

use std::borrow::Cow;

/// The code systems the knowledge base speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodeSystem {
    Snomed,
    Icd10Cm,
    Icd10Pcs,
    Loinc,
    RxNorm,
    Atc,
    Cpt,
    Hcpcs,
}

impl CodeSystem {
    /// Recognises the canonical URL, its common variants (http/https,
    /// trailing slash, case) and the HL7 OIDs.
    pub fn from_uri(uri: &str) -> Option<Self> {
        // The canonical URLs first, as written: nearly every coding read.
        match uri {
            "http://snomed.info/sct" => return Some(CodeSystem::Snomed),
            "http://loinc.org" => return Some(CodeSystem::Loinc),
            "http://www.nlm.nih.gov/research/umls/rxnorm" => return Some(CodeSystem::RxNorm),
            "http://hl7.org/fhir/sid/icd-10-cm" => return Some(CodeSystem::Icd10Cm),
            _ => {}
        }
        let uri = uri.trim().trim_end_matches('/');
        // Lower-cased only when needed: this runs for every coding read.
        let lowered;
        let uri = if uri.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = uri.to_ascii_lowercase();
            lowered.as_str()
        } else {
            uri
        };
        let bare = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"))
            .unwrap_or(uri);
        let bare = bare.strip_prefix("www.").unwrap_or(bare);
        Some(match bare {
            "snomed.info/sct" | "urn:oid:2.16.840.1.113883.6.96" => CodeSystem::Snomed,
            "hl7.org/fhir/sid/icd-10-cm"
            | "hl7.org/fhir/sid/icd-10"
            | "urn:oid:2.16.840.1.113883.6.90"
            | "urn:oid:2.16.840.1.113883.6.3" => CodeSystem::Icd10Cm,
            "cms.gov/medicare/coding/icd10"
            | "hl7.org/fhir/sid/icd-10-pcs"
            | "urn:oid:2.16.840.1.113883.6.4" => CodeSystem::Icd10Pcs,
            "loinc.org" | "urn:oid:2.16.840.1.113883.6.1" => CodeSystem::Loinc,
            "nlm.nih.gov/research/umls/rxnorm" | "urn:oid:2.16.840.1.113883.6.88" => {
                CodeSystem::RxNorm
            }
            "whocc.no/atc" | "urn:oid:2.16.840.1.113883.6.73" => CodeSystem::Atc,
            "ama-assn.org/go/cpt" | "urn:oid:2.16.840.1.113883.6.12" => CodeSystem::Cpt,
            "cms.gov/medicare/coding/hcpcsreleasecodesets" | "urn:oid:2.16.840.1.113883.6.285" => {
                CodeSystem::Hcpcs
            }
            _ => return None,
        })
    }

    /// Hierarchies the knowledge base expresses as code prefixes (is-a).
    pub fn supports_prefix(self) -> bool {
        matches!(self, CodeSystem::Icd10Cm | CodeSystem::Atc)
    }

    /// The code as the index keeps it: ICD without its dot, ATC in capitals;
    /// borrowed when it already is.
    pub fn normalize(self, code: &str) -> Cow<'_, str> {
        let code = code.trim();
        match self {
            CodeSystem::Icd10Cm if code.bytes().any(|b| b == b'.' || b.is_ascii_lowercase()) => {
                Cow::Owned(
                    code.chars()
                        .filter(|c| *c != '.')
                        .map(|c| c.to_ascii_uppercase())
                        .collect(),
                )
            }
            CodeSystem::Atc | CodeSystem::Icd10Pcs | CodeSystem::Hcpcs
                if code.bytes().any(|b| b.is_ascii_lowercase()) =>
            {
                Cow::Owned(code.to_ascii_uppercase())
            }
            _ => Cow::Borrowed(code),
        }
    }

    /// Is this code well formed for its system? (SNOMED and LOINC check digits included.)
    pub fn is_well_formed(self, code: &str) -> bool {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match self {
            CodeSystem::Snomed => {
                (6..=18).contains(&code.len()) && digits(code) && verhoeff_valid(code)
            }
            CodeSystem::Icd10Cm => is_icd10cm(code),
            CodeSystem::Icd10Pcs => {
                code.len() == 7
                    && code.bytes().all(|b| {
                        b.is_ascii_digit() || (b.is_ascii_uppercase() && b != b'I' && b != b'O')
                    })
            }
            CodeSystem::Loinc => match code.split_once('-') {
                Some((body, check)) if body.starts_with("LA") || body.starts_with("LP") => {
                    digits(&body[2..]) && check.len() == 1 && digits(check)
                }
                Some((body, check)) => {
                    digits(body)
                        && body.len() <= 7
                        && check.len() == 1
                        && loinc_check_digit(body) == check
                }
                None => false,
            },
            CodeSystem::RxNorm => digits(code) && code.len() <= 9,
            CodeSystem::Atc => is_atc(code),
            CodeSystem::Cpt => {
                code.len() == 5 && digits(&code[..4]) && code.as_bytes()[4].is_ascii_alphanumeric()
            }
            CodeSystem::Hcpcs => {
                code.len() == 5 && code.as_bytes()[0].is_ascii_uppercase() && digits(&code[1..])
            }
        }
    }
}

fn is_icd10cm(code: &str) -> bool {
    let (category, subcategory) = match code.split_once('.') {
        Some((c, s)) => (c, Some(s)),
        None => (code, None),
    };
    let c = category.as_bytes();
    let category_ok = c.len() == 3
        && c[0].is_ascii_uppercase()
        && c[0] != b'U'
        && c[1].is_ascii_digit()
        && (c[2].is_ascii_digit() || c[2] == b'A' || c[2] == b'B');
    category_ok
        && subcategory.is_none_or(|s| {
            (1..=4).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        })
}

fn is_atc(code: &str) -> bool {
    let b = code.as_bytes();
    let shape = [
        |x: u8| x.is_ascii_uppercase(),
        |x: u8| x.is_ascii_digit(),
        |x: u8| x.is_ascii_digit(),
        |x: u8| x.is_ascii_uppercase(),
        |x: u8| x.is_ascii_uppercase(),
        |x: u8| x.is_ascii_digit(),
        |x: u8| x.is_ascii_digit(),
    ];
    matches!(b.len(), 1 | 3 | 4 | 5 | 7) && b.iter().zip(shape).all(|(x, ok)| ok(*x))
}

/// LOINC's mod-10 check digit over the code body.
fn loinc_check_digit(body: &str) -> String {
    let digits: Vec<u32> = body.bytes().map(|b| u32::from(b - b'0')).collect();
    let mut sum = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        sum += if i % 2 == 0 {
            let doubled = d * 2;
            doubled / 10 + doubled % 10
        } else {
            *d
        };
    }
    ((10 - sum % 10) % 10).to_string()
}

fn verhoeff_valid(code: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, b) in code.bytes().rev().enumerate() {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
    }
    c == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_spellings_seen_in_the_wild() {
        for uri in [
            "http://snomed.info/sct",
            "https://snomed.info/sct/",
            "urn:oid:2.16.840.1.113883.6.96",
        ] {
            assert_eq!(CodeSystem::from_uri(uri), Some(CodeSystem::Snomed), "{uri}");
        }
        assert_eq!(
            CodeSystem::from_uri("http://hl7.org/fhir/sid/icd-10-cm"),
            Some(CodeSystem::Icd10Cm)
        );
        assert_eq!(
            CodeSystem::from_uri("http://www.nlm.nih.gov/research/umls/rxnorm"),
            Some(CodeSystem::RxNorm)
        );
        assert_eq!(
            CodeSystem::from_uri("http://www.whocc.no/atc"),
            Some(CodeSystem::Atc)
        );
        assert_eq!(CodeSystem::from_uri("http://example.org/local"), None);
    }

    #[test]
    fn icd_codes_match_with_or_without_the_dot() {
        assert_eq!(CodeSystem::Icd10Cm.normalize("m62.831"), "M62831");
        assert_eq!(CodeSystem::Icd10Cm.normalize("M62831"), "M62831");
    }

    #[test]
    fn well_formed_codes() {
        assert!(CodeSystem::Snomed.is_well_formed("55300003"));
        assert!(!CodeSystem::Snomed.is_well_formed("55300004"));
        assert!(CodeSystem::Loinc.is_well_formed("2823-3"));
        assert!(!CodeSystem::Loinc.is_well_formed("2823-4"));
        assert!(CodeSystem::Loinc.is_well_formed("LA15173-0"));
        assert!(
            CodeSystem::Icd10Cm.is_well_formed("O9A.111")
                && CodeSystem::Icd10Cm.is_well_formed("Z3A")
        );
        assert!(!CodeSystem::Icd10Cm.is_well_formed("M62831"));
        assert!(
            CodeSystem::Atc.is_well_formed("C03C") && CodeSystem::Atc.is_well_formed("C08CA05")
        );
        assert!(!CodeSystem::Atc.is_well_formed("C03CA0"));
        assert!(CodeSystem::Cpt.is_well_formed("93971"));
    }
}
