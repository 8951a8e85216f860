// The runtime's namespace for its own tests (a generated project names it after its spec).

#ifndef CATOPT_RUNTIME_CONFIG_HPP
#define CATOPT_RUNTIME_CONFIG_HPP

#define CATOPT_RT_NAMESPACE catopt_runtime_test

#endif  // CATOPT_RUNTIME_CONFIG_HPP
