// Package faq answers frequently asked questions by similarity: the
// customer's message is compared with every question variant of every FAQ
// entry of the domain and the closest entry wins.
//
// Chinese is written without spaces, so text is cut into character
// unigrams and bigrams after rules.Normalize (full-width folded, Latin
// lower-cased) with punctuation, symbols and spaces dropped; a bigram never
// spans a dropped character. Terms are weighted by TF-IDF (the IDF counted
// over question variants) and compared by cosine similarity through an
// inverted index, so a search touches only the variants that share a term
// with the message. An entry scores the maximum over its variants; a message
// equal to a variant (after normalization) scores exactly 1.
//
// It must not: do I/O, log (customer text), keep package-level state, or
// decide whether a score is good enough — the caller applies the domain's
// policy.faq_threshold.
package faq
