// The runner of the actor tests: CAF's unit-test engine (caf/test/unit_test_impl.hpp provides main).
#define CAF_SUITE actors
#include <caf/test/unit_test_impl.hpp>
