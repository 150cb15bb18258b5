//! §1: when the service speaks: documented leg cramps.

use super::*;

impl Rules {
    /// §1: cramps documented by an active (or recent, unresolved) Condition,
    /// or as the reason for the current encounter.
    pub(super) fn documented_cramps(&self, input: &HookInput, classified: &Classified) -> Findings {
        let mut found = Findings::default();
        let is_cramp = |concept: &CodeableConcept, memberships: Memberships| {
            documents_leg_cramps(concept, memberships.contains(self.sets.leg_cramps))
        };
        for (condition, memberships) in input.record.conditions.iter().zip(&classified.conditions) {
            let c = &condition.resource;
            let Some(code) = &c.code else { continue };
            if !is_cramp(code, *memberships) {
                continue;
            }
            let recent = condition_is_credible(c)
                && !condition_is_resolved(c, input.now)
                && within(
                    clinical::condition_date_latest(c),
                    CRAMP_RECORDED_WINDOW,
                    input.now,
                );
            if condition_is_active(c, input.now) || recent {
                found.add_dated(
                    "leg-cramps",
                    &condition.reference,
                    condition_note(code, c),
                    condition_date(c),
                );
            }
        }
        if let Some(encounter) = input.encounter_id.and_then(|id| input.record.encounter(id)) {
            for reason in &encounter.resource.reason_code {
                if is_cramp(reason, self.kb.value_sets.classify(reason)) {
                    let label = reason.label().unwrap_or("leg cramps");
                    found.add(
                        "leg-cramps",
                        &encounter.reference,
                        format!("{label} (reason for this visit)"),
                    );
                }
            }
        }
        found
    }
}

/// What a text says about cramps (r2 §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrampText {
    /// No word for a cramp.
    Silent,
    /// "no cramps", "denies leg cramps": never counts.
    Negated,
    /// A leg site: leg, calf, thigh, foot, night or nocturnal.
    Leg,
    /// Only another site or kind: abdominal, menstrual, writer's, heat ...
    OtherSite,
    /// A cramp of no named site.
    Unsited,
}

const LEG_WORDS: &[&str] = &[
    "leg",
    "legs",
    "calf",
    "calves",
    "thigh",
    "thighs",
    "foot",
    "feet",
    "night",
    "nights",
    "nighttime",
    "nocturnal",
];
const OTHER_SITE_WORDS: &[&str] = &[
    "abdominal",
    "abdomen",
    "stomach",
    "menstrual",
    "uterine",
    "pelvic",
    "pelvis",
    "arm",
    "arms",
    "hand",
    "hands",
    "finger",
    "fingers",
    "writer",
    "writers",
    "writer's",
    "jaw",
    "heat",
];
const NEGATION_WORDS: &[&str] = &[
    "no", "not", "denies", "denied", "deny", "without", "negative", "absent", "none",
];
/// A review-of-systems answer after the cramp word: "leg cramps: none",
/// "cramps absent", "leg cramps - denied".
const ANSWER_NEGATION_WORDS: &[&str] = &[
    "no", "not", "none", "nil", "denied", "denies", "absent", "negative",
];

/// Does a coded or written concept document a leg cramp? A code of the
/// leg-cramps value set counts unless its own text names only a non-leg
/// site; text alone counts for a leg site or no site; negated text never.
pub(super) fn documents_leg_cramps(concept: &CodeableConcept, coded: bool) -> bool {
    let (mut leg, mut other, mut unsited) = (false, false, false);
    for text in concept.texts() {
        match cramp_text(text) {
            CrampText::Negated => return false,
            CrampText::Leg => leg = true,
            CrampText::OtherSite => other = true,
            CrampText::Unsited => unsited = true,
            CrampText::Silent => {}
        }
    }
    leg || (!other && (coded || unsited))
}

fn cramp_text(text: &str) -> CrampText {
    // Most texts name no cramp at all: look before splitting into words.
    if !contains_ignoring_case(text, "cramp") {
        return CrampText::Silent;
    }
    let lower = text.to_lowercase();
    // An answer of a word or two after the cramp word, in the same sentence
    // (a colon does not end it): "Leg cramps: none". A longer rest is a
    // description ("cramps not relieved by stretching"), not an answer.
    for sentence in lower.split(['.', ';', ',', '\n']) {
        let words: Vec<&str> = sentence
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(at) = words.iter().position(|w| w.starts_with("cramp")) {
            let answer = &words[at + 1..];
            if answer.len() <= 2 && answer.iter().any(|w| ANSWER_NEGATION_WORDS.contains(w)) {
                return CrampText::Negated;
            }
        }
    }
    let mut verdict = CrampText::Silent;
    // A clause at a time: "no fever; leg cramps at night" is not negated.
    for clause in lower.split(['.', ';', ',', ':', '\n']) {
        let words: Vec<&str> = clause
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .filter(|w| !w.is_empty())
            .collect();
        let Some(at) = words.iter().position(|w| w.starts_with("cramp")) else {
            continue;
        };
        if words[..at].iter().any(|w| NEGATION_WORDS.contains(w)) {
            return CrampText::Negated;
        }
        let this = if words.iter().any(|w| LEG_WORDS.contains(w)) {
            CrampText::Leg
        } else if words.iter().any(|w| OTHER_SITE_WORDS.contains(w))
            // "period cramps", not "cramps for a period of weeks"
            || (at > 0 && matches!(words[at - 1], "period" | "periods"))
            || names_the_back(&words, at)
        {
            CrampText::OtherSite
        } else {
            CrampText::Unsited
        };
        verdict = match (verdict, this) {
            (CrampText::Leg, _) | (_, CrampText::Leg) => CrampText::Leg,
            (CrampText::OtherSite, _) | (_, CrampText::OtherSite) => CrampText::OtherSite,
            _ => CrampText::Unsited,
        };
    }
    verdict
}

/// "Back" as a site: right before the cramp word ("back cramps"), or after
/// a word that makes it a place ("cramps in the lower back"); never "the
/// cramps came back".
fn names_the_back(words: &[&str], cramp_at: usize) -> bool {
    words.iter().enumerate().any(|(i, word)| {
        *word == "back"
            && (i + 1 == cramp_at
                || (i > 0
                    && matches!(
                        words[i - 1],
                        "the"
                            | "her"
                            | "his"
                            | "my"
                            | "their"
                            | "lower"
                            | "upper"
                            | "low"
                            | "mid"
                            | "in"
                    )))
    })
}

fn contains_ignoring_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> CodeableConcept<'_> {
        CodeableConcept {
            coding: Vec::new(),
            text: Some(t.into()),
        }
    }

    #[test]
    fn text_counts_for_a_leg_site_or_none_never_for_another_site_or_negated() {
        for (t, counts) in [
            ("Leg cramps", true),
            ("Nocturnal cramps", true),
            ("Cramps", true),
            ("Muscle cramping", true),
            ("Cramp in calf at night", true),
            ("Leg and stomach cramps", true),
            ("Abdominal cramps", false),
            ("Menstrual cramps", false),
            ("Writer's cramp", false),
            ("Heat cramps", false),
            ("Period cramps", false),
            ("Cramps for a period of weeks", true),
            ("Back cramps", false),
            ("Lower back cramps", false),
            ("The cramps came back", true),
            ("Cramps in the lower back", false),
            ("Cramping in her back", false),
            ("Leg cramps are back", true),
            ("Cramping in the hands", false),
            ("No cramps", false),
            ("Denies leg cramps", false),
            ("Swelling without cramps", false),
            ("No fever; leg cramps at night", true),
            ("Leg swelling", false),
            ("Leg cramps: none", false),
            ("Leg cramps: denied", false),
            ("Nocturnal leg cramps - absent", false),
            ("Cramps: negative", false),
            ("Leg cramps: none reported", false),
            ("Leg cramps not relieved by stretching", true),
            ("Leg cramps: nightly", true),
        ] {
            assert_eq!(documents_leg_cramps(&text(t), false), counts, "{t}");
        }
    }

    #[test]
    fn a_cramp_code_counts_unless_its_text_names_only_another_site() {
        assert!(documents_leg_cramps(&text("Cramp and spasm"), true));
        assert!(documents_leg_cramps(&text("Muscle spasm of calf"), true));
        assert!(!documents_leg_cramps(&text("Abdominal cramps"), true));
        assert!(documents_leg_cramps(&CodeableConcept::default(), true));
    }
}
