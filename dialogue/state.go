package dialogue

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// historyIntents is how many recent intents a session remembers (for the
// hand-off summary).
const historyIntents = 10

// state is what the engine keeps of a conversation between turns. It is
// stored sealed (AES-GCM) in the session row, so slot values never reach the
// disk in clear.
type state struct {
	Slots map[string]string `json:"slots,omitempty"`
	// Stack holds the open forms, innermost last.
	Stack []frame `json:"stack,omitempty"`
	// Fallbacks counts consecutive turns nothing could answer.
	Fallbacks int `json:"fallbacks,omitempty"`
	// Intents are the recent intents, oldest first.
	Intents []string `json:"intents,omitempty"`
	// Lane is the lane of the last turn.
	Lane string `json:"lane,omitempty"`
}

// frame is an open form.
type frame struct {
	Form string `json:"form"`
	// Slot is the slot asked for last ("" before the first prompt).
	Slot string `json:"slot,omitempty"`
	// Retries counts invalid answers for Slot.
	Retries int `json:"retries,omitempty"`
	// Filled are the slots this form set (cleared when it is cancelled).
	Filled []string `json:"filled,omitempty"`
	// Skipped are optional slots the customer declined.
	Skipped []string `json:"skipped,omitempty"`
	// Interrupted is set while another request is being answered on top.
	Interrupted bool `json:"interrupted,omitempty"`
}

func decodeState(b []byte) (*state, error) {
	st := &state{}
	if len(b) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("decode session state: %w", err)
	}
	return st, nil
}

func (st *state) encode() []byte {
	b, err := json.Marshal(st)
	if err != nil { // only maps of strings and plain structs: cannot fail
		panic(fmt.Sprintf("encode session state: %v", err))
	}
	return b
}

// clone returns a deep copy, so a turn can work on its own copy and the
// cached state changes only once the turn is committed.
func (st *state) clone() *state {
	c := &state{Slots: maps.Clone(st.Slots), Fallbacks: st.Fallbacks, Intents: slices.Clone(st.Intents), Lane: st.Lane}
	c.Stack = make([]frame, len(st.Stack))
	for i, f := range st.Stack {
		f.Filled = slices.Clone(f.Filled)
		f.Skipped = slices.Clone(f.Skipped)
		c.Stack[i] = f
	}
	return c
}

func (st *state) top() *frame {
	if len(st.Stack) == 0 {
		return nil
	}
	return &st.Stack[len(st.Stack)-1]
}

func (st *state) setSlot(name, value string) {
	if st.Slots == nil {
		st.Slots = map[string]string{}
	}
	st.Slots[name] = value
}

func (st *state) noteIntent(name string) {
	st.Intents = append(st.Intents, name)
	if n := len(st.Intents); n > historyIntents {
		st.Intents = slices.Delete(st.Intents, 0, n-historyIntents)
	}
}

// formNames lists the stack's forms, outermost first (for debugging views).
func (st *state) formNames() []string {
	out := make([]string, len(st.Stack))
	for i, f := range st.Stack {
		out[i] = f.Form
	}
	return out
}
