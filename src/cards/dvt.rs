//! The DVT rule-out card (clinical-rules.md §6).

use super::*;

impl CardRenderer {
    pub(super) fn dvt(&self, dvt: &DvtAssessment) -> Card {
        let mut draft = Draft::new(self);
        let opening = draft.say(Say::DvtClotIsNotACramp);
        draft.line(format!("**{opening}**"));
        draft.line("");
        let findings = dvt.findings.as_slice();
        for finding in findings.iter().filter(|f| ["leg-swelling", "leg-pain", "leg-cramps"].contains(&f.code.as_str())) {
            self.bullet(&mut draft, finding);
        }
        draft.line("");
        let shown: Vec<&Finding> = findings.iter().filter(|f| WELLS_ITEMS.contains(&f.code.as_str())).collect();
        if dvt.pregnant {
            // Wells is not validated in pregnancy: list the risks, score nothing.
            let risk = draft.say(Say::DvtPregnancyRaisesRisk);
            draft.line(format!("- **Pregnancy**: {risk}"));
            for finding in &shown {
                self.bullet(&mut draft, finding);
            }
        } else {
            draft.line("**Wells items the record shows**");
            if shown.is_empty() {
                draft.line("- None found in the record.");
            }
            for finding in &shown {
                self.bullet(&mut draft, finding);
            }
            let not_a_score = draft.say(Say::DvtChartIsNotAWellsScore);
            draft.line(format!("- Points known from the chart: **{}**. {not_a_score}", dvt.known_points));
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
        let alternatives: Vec<&Finding> =
            findings.iter().filter(|f| ["bakers-cyst", "leg-injury"].contains(&f.code.as_str())).collect();
        if !alternatives.is_empty() {
            draft.line("");
            draft.line("**Alternatives seen in the record** (weigh them in the last item)");
            for finding in alternatives {
                self.bullet(&mut draft, finding);
            }
        }
        for finding in findings.iter().filter(|f| f.code == "anticoagulated") {
            draft.line("");
            self.bullet(&mut draft, finding);
        }
        draft.line("");
        draft.line("**Next step**");
        if dvt.pregnant {
            draft.point(Say::DvtPregnantUltrasound);
        } else if dvt.known_points >= 2 {
            draft.point(Say::DvtTwoPointsUltrasound);
        } else {
            draft.point(Say::DvtCompleteWellsAtBedside);
        }
        let summary = if dvt.pregnant {
            "Leg swelling in pregnancy with pain or cramps: rule out a DVT with compression ultrasound".to_owned()
        } else {
            "Leg swelling with pain or cramps: rule out a DVT (Wells, ultrasound or D-dimer)".to_owned()
        };
        if dvt.patient.is_none() {
            draft.line("");
            draft.line("_No orders are offered: the record does not say which patient they would be for._");
        }
        let mut card = self.card(Topic::DvtRuleOut, Indicator::Warning, summary, draft, findings);
        let Some(patient) = dvt.patient.as_deref() else { return card };
        let ultrasound = self.service_request(dvt, patient, Test::Ultrasound);
        let d_dimer = self.service_request(dvt, patient, Test::DDimer);
        card.suggestions = if dvt.pregnant {
            vec![suggestion(ultrasound, true)]
        } else if dvt.known_points >= 2 {
            vec![suggestion(ultrasound, true), suggestion(d_dimer, false)]
        } else {
            vec![suggestion(d_dimer, true), suggestion(ultrasound, false)]
        };
        card.selection_behavior = Some(SelectionBehavior::AtMostOne);
        card
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
        let action = Action { kind: ActionKind::Create, description: format!("Create a draft order: {text}"), resource: Some(resource), resource_id: None };
        (label.to_owned(), action)
    }
}

enum Test {
    Ultrasound,
    DDimer,
}

fn suggestion((label, action): (String, Action), recommended: bool) -> Suggestion {
    Suggestion { label, uuid: Uuid::new_v4(), is_recommended: recommended, actions: vec![action] }
}
