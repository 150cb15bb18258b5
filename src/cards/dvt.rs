//! The DVT rule-out card (clinical-rules.md §6).

use super::*;
use crate::knowledge::Order;

impl CardRenderer {
    pub(super) fn dvt(&self, dvt: &DvtAssessment) -> Card {
        let mut draft = Draft::new(self);
        // The summary is the opening line (r2 §6: it names the finding); the
        // detail starts with the record's facts behind it, citing it.
        let opening = self.kb.statement(Say::DvtOpening);
        let opening_tags = draft.cite(&opening.sources);
        let findings = dvt.findings.as_slice();
        let with_code = |codes: &'static [&'static str]| {
            findings
                .iter()
                .filter(move |f| codes.contains(&f.code.as_str()))
        };
        let next_step = dvt.next_step();
        // The presenting findings, on one line: what the opening names.
        let presenting: Vec<String> = with_code(&["leg-swelling", "leg-pain", "leg-cramps"])
            .map(|f| describe_notes(&f.notes))
            .collect();
        draft.line(format!("- {} {opening_tags}", presenting.join("; ")));
        // Facts that change the question: a DVT of the other leg, a D-dimer
        // that is not negative.
        for finding in with_code(&["active-dvt", "d-dimer-positive"]) {
            if next_step == DvtNextStep::UltrasoundInPregnancy {
                // The record's fact alone: these findings cite the Wells
                // pathway, which does not cover pregnancy (§6 r2); the card's
                // next step cites Le Gal and RCOG.
                draft.line(format!(
                    "- **{}**: {}",
                    self.display(&finding.code),
                    describe_notes(&finding.notes)
                ));
            } else {
                self.bullet(&mut draft, finding);
            }
        }
        let chart_items: Vec<&Finding> = findings
            .iter()
            .filter(|f| CHART_WELLS_ITEMS.contains(&f.code.as_str()))
            .collect();
        if next_step == DvtNextStep::UltrasoundInPregnancy {
            // In pregnancy and after childbirth the card cites Le Gal 2012
            // and RCOG 37b, not the Wells pathway, which does not cover
            // them: facts from the record only, no cramp wording, no score.
            for finding in with_code(&["pregnancy", "postpartum"]) {
                let label = self.template(if finding.code == "pregnancy" {
                    Say::DvtLabelPregnancy
                } else {
                    Say::DvtLabelPostpartum
                });
                draft.line(format!("- **{label}**: {}", describe_notes(&finding.notes)));
            }
            if !chart_items.is_empty() {
                let items: Vec<String> = chart_items
                    .iter()
                    .map(|f| {
                        let display = self.display(&f.code);
                        let display = display.trim_end_matches(" (Wells +1)");
                        format!("{display}: {}", describe_notes(&f.notes))
                    })
                    .collect();
                let not_scored = draft.say(Say::DvtPregnancyNotScoredShort);
                draft.line(format!("- {not_scored} {}", items.join("; ")));
            }
        } else {
            for finding in &chart_items {
                draft.line(format!(
                    "- **{}**: {}",
                    self.display(&finding.code),
                    describe_notes(&finding.notes)
                ));
            }
            // The points and the bedside items in one line, one citation.
            let not_a_score = self.kb.statement(Say::DvtPointsNotAScore);
            let to_assess = self.kb.statement(Say::DvtStillToAssess);
            let mut sources = not_a_score.sources.clone();
            sources.extend(
                to_assess
                    .sources
                    .iter()
                    .filter(|s| !not_a_score.sources.contains(s))
                    .cloned(),
            );
            let tags = draft.cite(&sources);
            let points = fill(
                self.template(Say::DvtPointsKnown),
                &[("points", &dvt.known_points.to_string())],
            );
            draft.line(format!(
                "- {points} {} {} {tags}",
                not_a_score.text, to_assess.text
            ));
        }
        for finding in with_code(&["bakers-cyst", "leg-injury", "anticoagulated"]) {
            draft.line(format!(
                "- **{}**: {}",
                self.display(&finding.code),
                describe_notes(&finding.notes)
            ));
        }
        let mut steps = Vec::with_capacity(3);
        match next_step {
            DvtNextStep::UltrasoundInPregnancy => steps.push(Say::DvtPregnantUltrasound),
            DvtNextStep::UltrasoundRecommended => {
                if dvt.d_dimer_not_negative {
                    steps.push(Say::DvtDDimerNotNegativeUltrasound);
                }
                if dvt.known_points >= 2 {
                    steps.push(Say::DvtTwoPointsUltrasoundShort);
                }
                if dvt.anticoagulated {
                    steps.push(Say::DvtAnticoagulatedUltrasound);
                }
            }
            DvtNextStep::BedsideScoreDecides => steps.push(Say::DvtBedsideDecides),
        }
        draft.next_step(&steps);
        let opening = opening.text.trim_end_matches('.');
        let summary = match (dvt.pregnant, dvt.postpartum) {
            (true, _) => format!("{opening} (pregnant: compression ultrasound)"),
            (false, true) => format!("{opening} (after childbirth: compression ultrasound)"),
            _ => opening.to_owned(),
        };
        if dvt.patient.is_none() {
            draft.line("");
            draft.line(self.template(Say::DvtNoOrders));
        }
        let mut card = self.card(
            Topic::DvtRuleOut,
            Indicator::Warning,
            summary,
            draft,
            self.summaries(findings),
        );
        let Some(patient) = dvt.patient.as_deref() else {
            return card;
        };
        let ultrasound = self.service_request(dvt, patient, Order::DvtDuplex);
        let d_dimer = self.service_request(dvt, patient, Order::DvtDDimer);
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

    /// A draft ServiceRequest for one of the orders in orders.json (its
    /// code, label and wording are data, reviewed with the card's sources).
    fn service_request(
        &self,
        dvt: &DvtAssessment,
        patient: &str,
        order: Order,
    ) -> (String, Action) {
        let order = self.kb.order(order);
        let text = order.text.as_str();
        let coding = json!({
            "system": order.code.system,
            "code": order.code.code,
            "display": order.code.display,
        });
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
            description: fill(self.template(Say::OrderCreate), &[("order", text)]),
            resource: Some(resource),
            resource_id: None,
        };
        (order.label.clone(), action)
    }
}

fn suggestion((label, action): (String, Action), recommended: bool) -> Suggestion {
    Suggestion {
        label,
        uuid: Uuid::new_v4(),
        is_recommended: recommended,
        actions: vec![action],
    }
}
