// Package dialogue is the brain of zhiyin: domain files, NLU (tokenizer,
// intent, entities, rules), training, the dialogue policy (forms, stack, FAQ,
// skills, hand-off), the session store and the priority lanes.
//
// It runs models only through package inference and knows nothing of the
// platforms messages arrive on.
package dialogue
