package config

import (
	"github.com/natreveal/natreveal/method/destopt"
	"github.com/natreveal/natreveal/method/ipid"
	"github.com/natreveal/natreveal/method/tcpoption"
)

// The tests name methods and scopes by these; the methods' own packages
// (method/...) declare them.
const (
	MethodDestOpt   = destopt.Name
	MethodTCPOption = tcpoption.Name
	MethodIPID      = ipid.Name
	ScopeSYN        = ipid.ScopeSYN
)
