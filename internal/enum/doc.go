// Package enum spells the values of Shoal's small enumerations — a queue
// policy, a durability, a shared-subscription strategy — the way
// configuration files write them, in one table per type: the String and
// Parse pair each type had written out by hand, once.
//
// # Ownership
//
// A Names is built once, at package initialisation, and only read after:
// it is safe for concurrent use and belongs to no goroutine.
package enum
