// Package sip is zhiyin's telephone line: a SIP user agent (RFC 3261, over
// UDP and TCP) that takes calls from an enterprise PBX or SIP trunk gateway
// and hands each one to the voice engine through the contract in
// channels/voice (Answerer, Handler, Media).
//
// It does the signalling only: peer allow-list and digest authentication,
// INVITE/ACK/CANCEL/BYE, re-INVITE and UPDATE (hold, resume, new address),
// session timers (RFC 4028), registration to a registrar, OPTIONS, INFO
// dtmf-relay, and transfer to a human agent by REFER (blind) or by bridging
// a second call. RTP, RTCP, SDP, the jitter buffer and RFC 4733 DTMF are in
// the media sub-package; this package allocates one media.Stream per call
// and drives it from the dialog.
//
// It must not understand speech or dialogue (that is channels/voice), log
// customer audio, or keep state outside a *Server: two Servers in one
// process are independent.
package sip
