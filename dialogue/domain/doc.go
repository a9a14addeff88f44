// Package domain loads a zhiyin domain folder: the intents and what answers
// them, entities, slots, responses, forms, FAQ, hand-off rules, priority
// lanes and the dialogue policy's settings (the format is the Rasa-like YAML
// described in the shipped domain). It checks everything that can be checked
// without the rest of the system and reports each problem as "file:line:
// message: what to do".
//
// It also renders responses: a variant is chosen for the channel and its
// {slot} placeholders, compiled at load, are filled from the slot values.
//
// It only reads and checks the domain. It must not parse NLU training data
// (the nlu:, stories: and rules: keys are skipped; package nludata reads
// them), run models, know which skills exist (Domain.Skills lists the
// references, Domain.CheckSkills checks them) or hold conversation state.
// A loaded *Domain is never changed and is safe for concurrent use.
package domain
