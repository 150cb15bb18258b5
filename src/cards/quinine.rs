//! The quinine warning card (clinical-rules.md §4).

use super::*;

impl CardRenderer {
    pub(super) fn quinine(&self, alert: &QuinineAlert) -> Card {
        let mut draft = Draft::new(self);
        let ordered = !alert.drafts.is_empty();
        let medicines = describe_notes(&alert.finding.notes);
        draft.line(if ordered {
            format!("**Quinine is being ordered**: {medicines}")
        } else {
            format!("**The patient is taking quinine**: {medicines}")
        });
        draft.point(Say::QuinineFdaShort);
        draft.next_step(&[if ordered {
            Say::QuinineNextStepOrdered
        } else {
            Say::QuinineNextStepTaking
        }]);
        let summary = if ordered {
            "Quinine must not be used for leg cramps (FDA): risk of life-threatening blood disorders"
        } else {
            "Patient takes quinine: not for leg cramps (FDA), risk of serious blood disorders"
        };
        let findings = self.summaries([&alert.finding]);
        let indicator = if ordered {
            Indicator::Critical
        } else {
            Indicator::Warning
        };
        let mut card = self.card(
            Topic::QuinineWarning,
            indicator,
            summary.to_owned(),
            draft,
            findings,
        );
        if ordered {
            card.suggestions = vec![Suggestion {
                label: "Remove the quinine order".into(),
                uuid: Uuid::new_v4(),
                is_recommended: true,
                actions: alert
                    .drafts
                    .iter()
                    .map(|reference| Action {
                        kind: ActionKind::Delete,
                        description: format!("Remove the draft order {reference}"),
                        resource: None,
                        resource_id: Some(reference.clone()),
                    })
                    .collect(),
            }];
            card.selection_behavior = Some(SelectionBehavior::AtMostOne);
            card.override_reasons = vec![
                Coding {
                    system: OVERRIDE_REASON_SYSTEM.into(),
                    code: "malaria-treatment".into(),
                    display: "Prescribed to treat malaria".into(),
                },
                Coding {
                    system: OVERRIDE_REASON_SYSTEM.into(),
                    code: "patient-informed-of-risk".into(),
                    display: "Patient informed of the risks and agrees".into(),
                },
            ];
        }
        card
    }
}
