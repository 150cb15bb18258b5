//! The DVT rule-out card (clinical-rules.md §6).

use super::*;

impl CardRenderer {
    pub(super) fn dvt(&self, dvt: &DvtAssessment) -> Card {
        let mut draft = Draft::new(self);
        let opening = draft.say(Say::DvtOpening);
        draft.line(format!("**{opening}**"));
        draft.line("");
        let findings = dvt.findings.as_slice();
        let with_code = |codes: &'static [&'static str]| {
            findings
                .iter()
                .filter(move |f| codes.contains(&f.code.as_str()))
        };
        let next_step = dvt.next_step();
        // In pregnancy and after childbirth the card cites Le Gal 2012 and
        // RCOG 37b, not the Wells pathway, which does not cover them.
        let in_pregnancy = next_step == DvtNextStep::UltrasoundInPregnancy;
        for finding in with_code(&[
            "leg-swelling",
            "leg-pain",
            "leg-cramps",
            "active-dvt",
            "d-dimer-positive",
        ]) {
            self.dvt_bullet(&mut draft, finding, in_pregnancy);
        }
        draft.line("");
        let chart_items: Vec<&Finding> = findings
            .iter()
            .filter(|f| CHART_WELLS_ITEMS.contains(&f.code.as_str()))
            .collect();
        if next_step == DvtNextStep::UltrasoundInPregnancy {
            // Facts from the record only: no cramp wording, no score.
            for finding in with_code(&["pregnancy", "postpartum"]) {
                let label = if finding.code == "pregnancy" {
                    "Pregnancy"
                } else {
                    "Delivery within the last 6 weeks"
                };
                draft.line(format!("- **{label}**: {}", describe_notes(&finding.notes)));
            }
            if !chart_items.is_empty() {
                draft.point(Say::DvtPregnancyNotScored);
                for finding in &chart_items {
                    self.dvt_bullet(&mut draft, finding, in_pregnancy);
                }
            }
        } else {
            draft.line("**Wells items the record shows**");
            if chart_items.is_empty() {
                draft.line("- None found in the record.");
            }
            for finding in &chart_items {
                self.dvt_bullet(&mut draft, finding, in_pregnancy);
            }
            let not_a_score = draft.say(Say::DvtChartIsNotAWellsScore);
            draft.line(format!(
                "- Points known from the record: **{}**. {not_a_score}",
                dvt.known_points
            ));
            draft.line("");
            draft.line("**Still to assess at the bedside (Wells)**");
            for item in [
                "Localised tenderness along the deep venous system (+1)",
                "Entire leg swollen (+1)",
                "Calf swelling at least 3 cm more than the other leg, 10 cm below the tibial tuberosity (+1)",
                "Pitting oedema confined to the symptomatic leg (+1)",
                "Collateral superficial veins, not varicose (+1)",
                "An alternative diagnosis at least as likely as DVT (-2)",
            ] {
                draft.line(format!("- {item}"));
            }
        }
        let alternatives: Vec<&Finding> = with_code(&["bakers-cyst", "leg-injury"]).collect();
        if !alternatives.is_empty() {
            draft.line("");
            draft.line("**Alternatives seen in the record**");
            for finding in alternatives {
                self.dvt_bullet(&mut draft, finding, in_pregnancy);
            }
        }
        for finding in with_code(&["anticoagulated"]) {
            draft.line("");
            self.dvt_bullet(&mut draft, finding, in_pregnancy);
        }
        draft.line("");
        draft.line("**Next step**");
        match next_step {
            DvtNextStep::UltrasoundInPregnancy => draft.point(Say::DvtPregnantUltrasound),
            DvtNextStep::UltrasoundRecommended => {
                if dvt.d_dimer_not_negative {
                    draft.point(Say::DvtDDimerNotNegativeUltrasound);
                }
                if dvt.known_points >= 2 {
                    draft.point(Say::DvtTwoPointsUltrasound);
                }
                if dvt.anticoagulated {
                    draft.point(Say::DvtAnticoagulatedUltrasound);
                }
            }
            DvtNextStep::BedsideScoreDecides => draft.point(Say::DvtCompleteWellsAtBedside),
        }
        let summary = match (dvt.pregnant, dvt.postpartum) {
            (true, _) => "Leg swelling with pain or cramps: rule out DVT (pregnant: compression ultrasound)",
            (false, true) => "Leg swelling with pain or cramps: rule out DVT (after childbirth: compression ultrasound)",
            _ => "Leg swelling with pain or cramps: rule out DVT",
        };
        if dvt.patient.is_none() {
            draft.line("");
            draft.line(
                "_No orders are offered: the record does not say which patient they would be for._",
            );
        }
        let mut card = self.card(
            Topic::DvtRuleOut,
            Indicator::Warning,
            summary.to_owned(),
            draft,
            findings,
        );
        let Some(patient) = dvt.patient.as_deref() else {
            return card;
        };
        let ultrasound = self.service_request(dvt, patient, Test::Ultrasound);
        let d_dimer = self.service_request(dvt, patient, Test::DDimer);
        card.suggestions = match next_step {
            DvtNextStep::UltrasoundInPregnancy => vec![suggestion(ultrasound, true)],
            DvtNextStep::UltrasoundRecommended => {
                vec![suggestion(ultrasound, true), suggestion(d_dimer, false)]
            }
            // The chart cannot tell DVT likely from unlikely: neither is marked.
            DvtNextStep::BedsideScoreDecides => {
                vec![suggestion(ultrasound, false), suggestion(d_dimer, false)]
            }
        };
        card.selection_behavior = Some(SelectionBehavior::AtMostOne);
        card
    }

    /// A finding as a bullet with its rationale and sources; in pregnancy
    /// without what only the Wells pathway says (its rationale, its points).
    fn dvt_bullet(&self, draft: &mut Draft, finding: &Finding, in_pregnancy: bool) {
        let Some(definition) = self.kb.finding(&finding.code) else {
            return self.bullet(draft, finding);
        };
        if finding.code == "anticoagulated" {
            // A record fact, shown not scored: what it changes is the next
            // step's service decision, which cites no source.
            draft.line(format!(
                "- **{}**: {}.",
                definition.display,
                describe_notes(&finding.notes)
            ));
            return;
        }
        if !in_pregnancy {
            return self.bullet(draft, finding);
        }
        let evidence = describe_notes(&finding.notes);
        let display = definition.display.trim_end_matches(" (Wells +1)");
        let sources: Vec<String> = definition
            .sources
            .iter()
            .filter(|s| *s != WELLS_SOURCE)
            .cloned()
            .collect();
        if sources.len() == definition.sources.len()
            || (!sources.is_empty() && finding.code.starts_with("leg-"))
        {
            let cite = draft.cite(&sources);
            draft.line(format!(
                "- **{display}**: {evidence}. {} {cite}",
                definition.rationale
            ));
        } else {
            draft.line(format!("- **{display}**: {evidence}."));
        }
    }

    fn service_request(&self, dvt: &DvtAssessment, patient: &str, test: Test) -> (String, Action) {
        let (label, coding, text) = match test {
            Test::Ultrasound => (
                "Order venous duplex ultrasound of the leg",
                json!({"system": "http://www.ama-assn.org/go/cpt", "code": "93971", "display": "Duplex scan of the veins of one leg"}),
                "Venous duplex ultrasound of the lower extremity to rule out DVT",
            ),
            Test::DDimer => (
                "Order D-dimer",
                json!({"system": "http://loinc.org", "code": "48065-7", "display": "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma"}),
                "D-dimer to rule out DVT",
            ),
        };
        let resource = json!({
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "code": {"coding": [coding], "text": text},
            "subject": {"reference": patient},
            "reasonReference": dvt.reasons.iter().map(|r| json!({"reference": r})).collect::<Vec<_>>(),
        });
        let action = Action {
            kind: ActionKind::Create,
            description: format!("Create a draft order: {text}"),
            resource: Some(resource),
            resource_id: None,
        };
        (label.to_owned(), action)
    }
}

/// The Wells 2003 / NICE NG158 source: not cited for pregnancy.
const WELLS_SOURCE: &str = "wells-2003";

enum Test {
    Ultrasound,
    DDimer,
}

fn suggestion((label, action): (String, Action), recommended: bool) -> Suggestion {
    Suggestion {
        label,
        uuid: Uuid::new_v4(),
        is_recommended: recommended,
        actions: vec![action],
    }
}
