package config

import "github.com/natreveal/natreveal/method/destopt"

// MethodDestOpt names dest-opt for the tests; the method's own package
// (method/destopt) declares it.
const MethodDestOpt = destopt.Name
