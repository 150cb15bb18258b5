//! Drug classes that can cause cramps (and quinine, and anticoagulants):
//! matched by RxNorm ingredient or product code, by ATC prefix, and when no
//! code matches by whole-word ingredient or brand name in the text.

use foldhash::HashMap;

use serde::Deserialize;

use super::codes::CodeSystem;
use super::{Category, FindingCode, KnowledgeError, SourceId};

const FILE: &str = "drug-classes.json";
use crate::fhir::model::CodeableConcept;

/// Evidence that a class causes cramps, strongest first: the derived
/// order is the order culprits are listed in (clinical-rules.md §3, r2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strength {
    Moderate,
    Low,
    Reported,
    /// Sources disagree (beta-blockers): information only, never a reason
    /// to act, never in a summary, never a card by itself on an order.
    Conflicting,
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Moderate => "moderate",
            Strength::Low => "low",
            Strength::Reported => "reported",
            Strength::Conflicting => "conflicting",
            Strength::NotApplicable => "n/a",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrugClass {
    pub code: FindingCode,
    pub display: String,
    pub category: Category,
    pub strength: Strength,
    pub strength_note: String,
    pub sources: Vec<SourceId>,
    #[serde(default)]
    pub systemic_only: bool,
    pub ingredients: Vec<Ingredient>,
    #[serde(default)]
    pub brands: Vec<String>,
    #[serde(default)]
    pub atc: Vec<String>,
    #[serde(default)]
    pub products: Vec<Product>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingredient {
    pub name: String,
    pub rxnorm: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub rxnorm: String,
    pub display: String,
    pub source: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DrugClassesFile {
    classes: Vec<DrugClass>,
}

/// A set of drug classes (at most 64), by position in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassSet(u64);

impl ClassSet {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |i| self.0 & (1 << i) != 0)
    }

    fn union(self, other: ClassSet) -> ClassSet {
        ClassSet(self.0 | other.0)
    }

    pub fn contains(self, position: usize) -> bool {
        position < 64 && self.0 & (1 << position) != 0
    }
}

/// Words that put a product outside the systemic route (eye drops, creams,
/// inhalers): a systemic-only class is not matched on them by ingredient
/// code or name. Product codes and ATC codes are curated and trusted.
const NON_SYSTEMIC_WORDS: &[&str] = &[
    "ophthalmic",
    "otic",
    "nasal",
    "topical",
    "cream",
    "ointment",
    "lotion",
    "gel",
    "eye",
    "ear",
    "drops",
    "rectal",
    "enema",
    "suppository",
    "foam",
    "spray",
    "shampoo",
    "cutaneous",
    "dermal",
    "vaginal",
    "mouthwash",
    "dental",
    "paste",
    "inhaler",
    "inhalation",
    "inhaled",
    "inhalant",
    "nebulizer",
    "nebuliser",
];

pub struct DrugIndex {
    classes: Vec<DrugClass>,
    products: HashMap<String, ClassSet>,
    ingredients: HashMap<String, ClassSet>,
    atc: HashMap<String, ClassSet>,
    names: HashMap<String, ClassSet>,
    longest_name: usize,
    longest_atc: usize,
}

impl DrugIndex {
    pub fn from_json(json: &str) -> Result<Self, KnowledgeError> {
        let file: DrugClassesFile =
            serde_json::from_str(json).map_err(|e| KnowledgeError::invalid(FILE, e.to_string()))?;
        if file.classes.len() > 64 {
            return Err(KnowledgeError::invalid(FILE, "more than 64 classes"));
        }
        let mut index = Self {
            classes: Vec::new(),
            products: HashMap::default(),
            ingredients: HashMap::default(),
            atc: HashMap::default(),
            names: HashMap::default(),
            longest_name: 0,
            longest_atc: 0,
        };
        for (position, class) in file.classes.iter().enumerate() {
            if class.sources.is_empty() {
                return Err(KnowledgeError::invalid(
                    FILE,
                    format!("class '{}' cites no source", class.code),
                ));
            }
            let bit = ClassSet(1 << position);
            let add = |map: &mut HashMap<String, ClassSet>, key: String| {
                let set = map.entry(key).or_default();
                *set = set.union(bit);
            };
            for product in &class.products {
                add(&mut index.products, product.rxnorm.clone());
            }
            for ingredient in &class.ingredients {
                if let Some(code) = &ingredient.rxnorm {
                    add(&mut index.ingredients, code.clone());
                }
                add(&mut index.names, normalize_name(&ingredient.name));
            }
            for brand in &class.brands {
                add(&mut index.names, normalize_name(brand));
            }
            for prefix in &class.atc {
                index.longest_atc = index.longest_atc.max(prefix.len());
                add(
                    &mut index.atc,
                    CodeSystem::Atc.normalize(prefix).into_owned(),
                );
            }
        }
        index.longest_name = index
            .names
            .keys()
            .map(|n| n.split(' ').count())
            .max()
            .unwrap_or(1);
        index.classes = file.classes;
        Ok(index)
    }

    pub fn classes(&self) -> &[DrugClass] {
        &self.classes
    }

    pub fn class(&self, position: usize) -> &DrugClass {
        &self.classes[position]
    }

    pub fn position(&self, code: &str) -> Option<usize> {
        self.classes.iter().position(|c| c.code == code)
    }

    /// The classes a medicine belongs to, from all its concepts (a
    /// combination product gives every class it contains) and the routes
    /// it is given by (dosage route): a local route (eye, skin, inhaled,
    /// nose) rules out the systemic-only classes, whatever the codes say.
    pub fn classify(&self, concepts: &[CodeableConcept], routes: &[CodeableConcept]) -> ClassSet {
        let mut trusted = ClassSet::default();
        let mut by_ingredient = ClassSet::default();
        for coding in concepts.iter().flat_map(|c| c.coding.iter()) {
            let (Some(system), Some(code)) = (
                coding.system.as_deref().and_then(CodeSystem::from_uri),
                coding.code.as_deref(),
            ) else {
                continue;
            };
            let code = system.normalize(code);
            match system {
                CodeSystem::RxNorm => {
                    trusted = trusted.union(
                        self.products
                            .get(code.as_ref())
                            .copied()
                            .unwrap_or_default(),
                    );
                    by_ingredient = by_ingredient.union(
                        self.ingredients
                            .get(code.as_ref())
                            .copied()
                            .unwrap_or_default(),
                    );
                }
                CodeSystem::Atc => {
                    // The most specific group listed decides: R03AC12
                    // (salmeterol) is long-acting although R03AC is
                    // short-acting, and a combination group lists all its
                    // classes. Record text may hold any character: cut only
                    // at char boundaries.
                    let longest = (1..=code.len().min(self.longest_atc))
                        .rev()
                        .filter(|end| code.is_char_boundary(*end))
                        .find_map(|end| self.atc.get(&code[..end]));
                    if let Some(set) = longest {
                        trusted = trusted.union(*set);
                    }
                }
                _ => {}
            }
        }
        let mut untrusted = by_ingredient;
        if trusted.is_empty() && by_ingredient.is_empty() {
            for text in concepts.iter().flat_map(|c| c.texts()) {
                untrusted = untrusted.union(self.classify_text(text));
            }
        }
        let systemic = |set: ClassSet| {
            ClassSet(
                set.iter()
                    .filter(|i| !self.classes[*i].systemic_only)
                    .fold(0, |s, i| s | (1 << i)),
            )
        };
        if !untrusted.is_empty()
            && concepts
                .iter()
                .flat_map(|c| c.texts())
                .any(mentions_non_systemic_route)
        {
            untrusted = systemic(untrusted);
        }
        let found = trusted.union(untrusted);
        if !found.is_empty() && routes.iter().any(is_local_route) {
            return systemic(found);
        }
        found
    }

    /// Whole-word, case-insensitive names (up to the longest name's words).
    fn classify_text(&self, text: &str) -> ClassSet {
        let words = words(text);
        let mut found = ClassSet::default();
        for start in 0..words.len() {
            for len in 1..=self.longest_name.min(words.len() - start) {
                if let Some(set) = self.names.get(&words[start..start + len].join(" ")) {
                    found = found.union(*set);
                }
            }
        }
        found
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn normalize_name(name: &str) -> String {
    words(name).join(" ")
}

fn mentions_non_systemic_route(text: &str) -> bool {
    words(text)
        .iter()
        .any(|w| NON_SYSTEMIC_WORDS.contains(&w.as_str()))
}

/// SNOMED CT routes of administration that act where applied (ophthalmic,
/// nasal, topical, cutaneous, respiratory tract / inhalation, otic,
/// rectal, vaginal, dental, oromucosal, intravitreal, conjunctival).
const LOCAL_ROUTE_CODES: &[&str] = &[
    "54485002",
    "46713006",
    "6064005",
    "448598008",
    "447694001",
    "18679011000001101",
    "10547007",
    "37161004",
    "16857009",
    "372449004",
    "372473007",
];

/// Route words that say the same in text or display.
const LOCAL_ROUTE_WORDS: &[&str] = &[
    "ophthalmic",
    "eye",
    "ocular",
    "intraocular",
    "intravitreal",
    "conjunctival",
    "nasal",
    "intranasal",
    "topical",
    "cutaneous",
    "skin",
    "dermal",
    "inhalation",
    "inhaled",
    "inhaler",
    "respiratory",
    "nebulized",
    "nebulised",
    "otic",
    "ear",
    "auricular",
    "rectal",
    "vaginal",
    "dental",
    "oromucosal",
    "mouthwash",
];

/// Is a dosage route one whose medicine acts where applied? Routes say
/// nothing systemic about the drug then (a timolol eye drop is not a
/// beta-blocker for cramps; an inhaled steroid is not a systemic one).
pub fn is_local_route(route: &CodeableConcept) -> bool {
    let coded = route.coding.iter().any(|c| {
        c.system.as_deref().and_then(CodeSystem::from_uri) == Some(CodeSystem::Snomed)
            && c.code
                .as_deref()
                .is_some_and(|code| LOCAL_ROUTE_CODES.contains(&code))
    });
    coded
        || route.texts().any(|text| {
            words(text)
                .iter()
                .any(|w| LOCAL_ROUTE_WORDS.contains(&w.as_str()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::model::Coding;

    const FILE: &str = r#"{"classes":[
      {"code":"loop-diuretic","display":"Loop diuretic","category":"medication","strength":"low","strengthNote":"n.s.",
       "sources":["garrison-2012"],"ingredients":[{"name":"furosemide","rxnorm":"4603"},{"name":"ethacrynic acid","rxnorm":"4109"}],
       "brands":["Lasix"],"atc":["C03C"],"products":[{"rxnorm":"313988","display":"furosemide 40 MG Oral Tablet","source":"t"}]},
      {"code":"beta-blocker","display":"Beta-blocker","category":"medication","strength":"conflicting","strengthNote":"control",
       "sources":["garrison-2012"],"systemicOnly":true,"ingredients":[{"name":"timolol","rxnorm":"10600"}],"atc":["C07"]}]}"#;

    fn concept<'a>(
        system: Option<&'a str>,
        code: Option<&'a str>,
        text: Option<&'a str>,
    ) -> CodeableConcept<'a> {
        CodeableConcept {
            coding: system
                .map(|s| Coding {
                    system: Some(s.into()),
                    code: code.map(Into::into),
                    display: None,
                })
                .into_iter()
                .collect(),
            text: text.map(Into::into),
        }
    }

    fn codes<'k>(index: &'k DrugIndex, concept: CodeableConcept) -> Vec<&'k str> {
        index
            .classify(&[concept], &[])
            .iter()
            .map(|i| index.class(i).code.as_str())
            .collect()
    }

    #[test]
    fn matches_by_product_ingredient_atc_and_text() {
        let index = DrugIndex::from_json(FILE).unwrap();
        let rx = "http://www.nlm.nih.gov/research/umls/rxnorm";
        assert_eq!(
            codes(&index, concept(Some(rx), Some("313988"), None)),
            ["loop-diuretic"]
        );
        assert_eq!(
            codes(&index, concept(Some(rx), Some("4603"), None)),
            ["loop-diuretic"]
        );
        assert_eq!(
            codes(
                &index,
                concept(Some("http://www.whocc.no/atc"), Some("C03CA01"), None)
            ),
            ["loop-diuretic"]
        );
        assert_eq!(
            codes(&index, concept(None, None, Some("LASIX 40mg tablet"))),
            ["loop-diuretic"]
        );
        assert_eq!(
            codes(&index, concept(None, None, Some("Ethacrynic  Acid 25 mg"))),
            ["loop-diuretic"]
        );
        assert!(codes(&index, concept(None, None, Some("furosemidex"))).is_empty());
        assert!(codes(&index, concept(Some(rx), Some("999999"), Some("vitamin D"))).is_empty());
    }

    /// Found by the hook_request fuzz target: a multi-byte character inside
    /// an ATC code panicked on slicing.
    #[test]
    fn atc_codes_with_non_ascii_characters_are_read_not_fatal() {
        let index = DrugIndex::from_json(FILE).unwrap();
        assert!(codes(
            &index,
            concept(Some("http://www.whocc.no/atc"), Some("C0źA01"), None)
        )
        .is_empty());
        assert_eq!(
            codes(
                &index,
                concept(Some("http://www.whocc.no/atc"), Some("C03CAź"), None)
            ),
            ["loop-diuretic"]
        );
    }

    #[test]
    fn the_most_specific_atc_group_decides() {
        let file = r#"{"classes":[
          {"code":"laba","display":"L","category":"medication","strength":"moderate","strengthNote":"","sources":["s"],
           "ingredients":[],"atc":["R03AC12","R03AL03"]},
          {"code":"saba","display":"S","category":"medication","strength":"reported","strengthNote":"","sources":["s"],
           "ingredients":[],"atc":["R03AC","R03AL01"]},
          {"code":"thiazide","display":"T","category":"medication","strength":"moderate","strengthNote":"","sources":["s"],
           "ingredients":[],"atc":["C07B"]},
          {"code":"bb","display":"B","category":"medication","strength":"conflicting","strengthNote":"","sources":["s"],
           "ingredients":[],"atc":["C07","C07B"]}]}"#;
        let index = DrugIndex::from_json(file).unwrap();
        let atc = |code| {
            codes(
                &index,
                concept(Some("http://www.whocc.no/atc"), Some(code), None),
            )
        };
        assert_eq!(atc("R03AC12"), ["laba"]);
        assert_eq!(atc("R03AC02"), ["saba"]);
        assert_eq!(atc("R03AL01"), ["saba"]);
        assert_eq!(atc("R03AL03"), ["laba"]);
        assert_eq!(atc("C07BB07"), ["thiazide", "bb"]);
        assert_eq!(atc("C07AB07"), ["bb"]);
    }

    #[test]
    fn a_local_route_rules_out_systemic_only_classes_even_when_coded() {
        let index = DrugIndex::from_json(FILE).unwrap();
        let rx = "http://www.nlm.nih.gov/research/umls/rxnorm";
        let timolol = || concept(Some(rx), Some("10600"), None);
        let route = |code: &'static str, text: &'static str| CodeableConcept {
            coding: vec![Coding {
                system: Some("http://snomed.info/sct".into()),
                code: Some(code.into()),
                display: None,
            }],
            text: Some(text.into()),
        };
        let classes =
            |routes: &[CodeableConcept]| index.classify(&[timolol()], routes).iter().count();
        assert_eq!(classes(&[]), 1);
        assert_eq!(classes(&[route("26643006", "Oral")]), 1);
        assert_eq!(classes(&[route("54485002", "")]), 0);
        assert_eq!(classes(&[route("999999", "Ophthalmic route")]), 0);
        // Not systemic-only: an inhaled loop diuretic would still count.
        let lasix = concept(Some(rx), Some("4603"), None);
        assert_eq!(
            index
                .classify(&[lasix], &[route("447694001", "inhalation")])
                .iter()
                .count(),
            1
        );
    }

    #[test]
    fn systemic_only_classes_ignore_eye_drops() {
        let index = DrugIndex::from_json(FILE).unwrap();
        assert!(codes(
            &index,
            concept(None, None, Some("timolol 0.5% ophthalmic solution"))
        )
        .is_empty());
        assert_eq!(
            codes(
                &index,
                concept(None, None, Some("timolol 10 mg oral tablet"))
            ),
            ["beta-blocker"]
        );
    }
}
