package lanes

import (
	"strings"

	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
)

// Classifier picks a turn's lane from the domain's `lanes:` section. Build
// it with NewClassifier; it is immutable and safe for concurrent use.
type Classifier struct {
	urgentKW, batchKW []string
	urgentIn, batchIn map[string]bool
}

// NewClassifier returns a classifier for the given keywords and intents.
// Keywords are normalized with rules.Normalize (so "ＳＯＳ" and "sos"
// match alike) and empty ones are dropped; intents are matched exactly. The
// slices are copied.
func NewClassifier(urgentKeywords, urgentIntents, batchKeywords, batchIntents []string) *Classifier {
	return &Classifier{
		urgentKW: normKeywords(urgentKeywords),
		batchKW:  normKeywords(batchKeywords),
		urgentIn: set(urgentIntents),
		batchIn:  set(batchIntents),
	}
}

func normKeywords(kws []string) []string {
	var out []string
	for _, k := range kws {
		if n := rules.Normalize(k).Text; n != "" {
			out = append(out, n)
		}
	}
	return out
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		if n != "" {
			m[n] = true
		}
	}
	return m
}

// ByText returns Urgent when normalizedText (the output of rules.Normalize)
// contains an urgent keyword, else Batch when it contains a batch keyword,
// else Normal.
func (c *Classifier) ByText(normalizedText string) Lane {
	if c == nil {
		return Normal
	}
	if containsAny(normalizedText, c.urgentKW) {
		return Urgent
	}
	if containsAny(normalizedText, c.batchKW) {
		return Batch
	}
	return Normal
}

func containsAny(s string, kws []string) bool {
	for _, k := range kws {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// ByIntent returns the lane for a turn whose intent became known after it
// was placed on current: an urgent intent raises it to Urgent; anything else
// leaves current as it is. It never lowers the priority (a batch intent does
// not demote a turn its text put on a faster lane), and an unlisted intent
// does not lift a turn that batch keywords put on Batch.
func (c *Classifier) ByIntent(intent string, current Lane) Lane {
	if c.IntentLane(intent) == Urgent {
		return Urgent
	}
	return current
}

// IntentLane returns the lane an intent asks for on its own: Urgent for an
// urgent intent, Batch for a batch intent (urgent wins when listed in both),
// Normal otherwise. Use it where the intent is known before the turn is
// queued (an API call that names it).
func (c *Classifier) IntentLane(intent string) Lane {
	switch {
	case c == nil:
		return Normal
	case c.urgentIn[intent]:
		return Urgent
	case c.batchIn[intent]:
		return Batch
	}
	return Normal
}
