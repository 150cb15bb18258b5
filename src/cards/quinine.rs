//! The quinine warning card (clinical-rules.md §4).

use super::*;

impl CardRenderer {
    pub(super) fn quinine(&self, alert: &QuinineAlert) -> Card {
        let mut draft = Draft::new(self);
        let ordered = !alert.drafts.is_empty();
        let medicines = describe_notes(&alert.finding.notes);
        let line = if ordered {
            Say::QuinineOrderedLine
        } else {
            Say::QuinineTakingLine
        };
        draft.line(fill(self.template(line), &[("medicines", &medicines)]));
        draft.point(Say::QuinineFdaShort);
        draft.next_step(&[if ordered {
            Say::QuinineNextStepOrdered
        } else {
            Say::QuinineNextStepTaking
        }]);
        // The summary condenses the FDA statement; its source is cited in
        // the detail (quinine-fda-short).
        let summary = self.template(if ordered {
            Say::QuinineSummaryOrdered
        } else {
            Say::QuinineSummaryTaking
        });
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
                label: self.template(Say::QuinineRemoveOrder).to_owned(),
                uuid: Uuid::new_v4(),
                is_recommended: true,
                actions: alert
                    .drafts
                    .iter()
                    .map(|reference| Action {
                        kind: ActionKind::Delete,
                        description: fill(
                            self.template(Say::QuinineRemoveDraft),
                            &[("reference", reference)],
                        ),
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
                    display: self.template(Say::QuinineOverrideMalaria).to_owned(),
                },
                Coding {
                    system: OVERRIDE_REASON_SYSTEM.into(),
                    code: "patient-informed-of-risk".into(),
                    display: self.template(Say::QuinineOverrideInformed).to_owned(),
                },
            ];
        }
        card
    }
}
