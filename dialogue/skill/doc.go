// Package skill is how the dialogue engine asks code outside the domain
// files for an answer: looking up an order, validating a form slot against a
// real system, submitting a finished form.
//
// A Skill answers a Request with a Response (replies, slot updates, a
// validation verdict, a hand-off). Skills are registered by name in a
// Registry; the domain names them (intent skill:, validate skill:, submit
// skill:). Built-in skills live in sub-packages (skill/orders); any other
// system plugs in over HTTP as a Webhook that speaks the Rasa action-server
// protocol, so an existing rasa-sdk action server works unchanged. Webhook
// calls are signed (Sign, Verify) so the receiver can tell they come from
// zhiyin.
//
// It must not: know the dialogue state beyond what a Request carries, log
// (customer text passes through here; the engine logs outcomes), retry a
// call the action server refused (4xx), or keep package-level state.
package skill
