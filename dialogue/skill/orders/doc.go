// Package orders is the demo order and parcel skill ("order_lookup") of the
// embedded e-commerce domain: it answers where a parcel is, what an order's
// refund status is, cancels an order that has not shipped, validates order
// and tracking numbers in forms, and confirms submitted return, address and
// invoice forms.
//
// Its data is a fixed demo set in two tables of zhiyin's SQLite database
// (component "demo", Migrations), so a fresh install answers "我的快递
// SF1234567890到哪了" out of the box. A real shop replaces it with its own
// skill or an action webhook (package skill).
//
// It must not: return an error for anything a customer can cause (an
// unknown or missing number is an answer that says what to do), write
// anything but an order's status and address, or log customer text.
package orders
