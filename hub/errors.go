package hub

import (
	"errors"
	"fmt"
)

// The classes of refusal. Every error the hub returns for something the
// caller got wrong is an [*Error] whose Class is one of these, so
// errors.Is(err, ErrConflict) holds for a conflict whatever its message.
// The class's text is the gateway's error code.
var (
	// ErrConflict: the object's current state does not allow the
	// action (409 conflict), including a decision that lost a race.
	ErrConflict = errors.New("conflict")
	// ErrForbidden: the actor may not take the action (403 forbidden).
	ErrForbidden = errors.New("forbidden")
	// ErrBadRequest: the action is malformed or lacks a required part,
	// such as a rejection's reason (400 bad_request).
	ErrBadRequest = errors.New("bad_request")
	// ErrNotFound: no object has the id (404 not_found).
	ErrNotFound = errors.New("not_found")
)

// Error is a refusal: a class and a message safe to show the caller (it
// names states, actions, fields and dates, never internals).
type Error struct {
	// Class is ErrConflict, ErrForbidden, ErrBadRequest or ErrNotFound.
	Class error
	// Msg says what was refused and why.
	Msg string
}

func (e *Error) Error() string { return e.Class.Error() + ": " + e.Msg }

// Unwrap returns the class.
func (e *Error) Unwrap() error { return e.Class }

func refuse(class error, format string, args ...any) error {
	return &Error{Class: class, Msg: fmt.Sprintf(format, args...)}
}
