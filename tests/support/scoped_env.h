// Test helper: sets an environment variable for one scope and puts back what was there
// (its old value, or nothing), so that a failing expectation cannot leave a switch set for
// the tests that follow.
#pragma once

#include <cstdlib>
#include <string>

namespace mst::test {

class ScopedEnv {
public:
    ScopedEnv(const char *name, const char *value) : name_(name) {
        if (const char *old = std::getenv(name)) old_ = old, had_ = true;
        setenv(name, value, 1);
    }
    ~ScopedEnv() {
        if (had_)
            setenv(name_.c_str(), old_.c_str(), 1);
        else
            unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv &) = delete;
    ScopedEnv &operator=(const ScopedEnv &) = delete;

private:
    std::string name_;
    std::string old_;
    bool had_ = false;
};

}  // namespace mst::test
