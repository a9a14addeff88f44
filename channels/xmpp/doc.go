// Package xmpp connects zhiyin to an XMPP (Jabber) server, written on
// encoding/xml, net and crypto/tls without an XMPP library.
//
// Two modes:
//
//   - client (RFC 6120/6121): the bot logs in as an ordinary account
//     (STARTTLS, SASL PLAIN, resource binding), answers one-to-one chats and
//     joins multi-user chat rooms (XEP-0045) where it answers when
//     addressed by its nick;
//   - component (XEP-0114): the bot is a server component (a sub-domain such
//     as bot.example.org) and answers messages sent to any address in it.
//
// Inbound messages go to the hub's sink; replies are written on the same
// stream. XMPP has no delivery acknowledgement for messages, so a message
// the sink refuses with a temporary error is retried in place (the read
// loop waits) until the sink takes it or the adapter stops.
//
// It must not: send a password in clear over anything but loopback, follow
// DTDs or entities (a DOCTYPE ends the stream), hold more than one stanza
// (bounded by max_stanza) in memory, split or pace replies (the hub does),
// or persist anything.
package xmpp
