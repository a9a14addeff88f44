// Package rules is the deterministic part of zhiyin's NLU for Chinese
// customer-service text: the normalization that runs before everything else
// (Normalize), and rule-based entity extractors (Extractor) that sit beside
// the trained entity model.
//
// Normalize folds full-width ASCII to half-width, lower-cases Latin letters,
// drops control and format characters and collapses whitespace, keeping a
// map from every normalized rune back to the original text, so entity
// offsets always point into what the customer typed.
//
// Extractor finds phone numbers, landlines, e-mail addresses, resident ID
// numbers (checksum verified), tracking numbers (per carrier), order
// numbers, amounts of money, quantities, dates and times (relative to a
// reference time in a configured zone, written in Chinese or Arabic
// numerals), plus operator lookups, synonyms and regular expressions.
// ParseChineseNumber reads Chinese numerals on its own.
//
// It must not: do I/O after New (New only resolves the time zone), keep
// package-level state, log (it has no logger and customer text must not be
// logged anyway), or guess with models: every result here is explainable by
// a rule and its tests.
package rules
