// JSON Merge Patch (RFC 7386): every example of Appendix A, plus nested objects.
#include "protocol/merge_patch.hpp"

#include <catch2/catch.hpp>

using nlohmann::json;
using sb::protocol::apply_merge_patch;

namespace {

json patched(const char* original, const char* patch) {
  json target = json::parse(original);
  apply_merge_patch(target, json::parse(patch));
  return target;
}

}  // namespace

TEST_CASE("merge patch replaces a member's value") {
  CHECK(patched(R"({"a":"b"})", R"({"a":"c"})") == json::parse(R"({"a":"c"})"));
}

TEST_CASE("merge patch adds a new member") {
  CHECK(patched(R"({"a":"b"})", R"({"b":"c"})") == json::parse(R"({"a":"b","b":"c"})"));
}

TEST_CASE("merge patch removes a member patched with null") {
  CHECK(patched(R"({"a":"b"})", R"({"a":null})") == json::parse(R"({})"));
}

TEST_CASE("merge patch removes only the member patched with null") {
  CHECK(patched(R"({"a":"b","b":"c"})", R"({"a":null})") == json::parse(R"({"b":"c"})"));
}

TEST_CASE("merge patch replaces an array with a string") {
  CHECK(patched(R"({"a":["b"]})", R"({"a":"c"})") == json::parse(R"({"a":"c"})"));
}

TEST_CASE("merge patch replaces a string with an array") {
  CHECK(patched(R"({"a":"c"})", R"({"a":["b"]})") == json::parse(R"({"a":["b"]})"));
}

TEST_CASE("merge patch merges nested objects and removes nested nulls") {
  CHECK(patched(R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})") == json::parse(R"({"a":{"b":"d"}})"));
}

TEST_CASE("merge patch replaces arrays whole rather than merging them") {
  CHECK(patched(R"({"a":[{"b":"c"}]})", R"({"a":[1]})") == json::parse(R"({"a":[1]})"));
}

TEST_CASE("an array patch replaces an array target") {
  CHECK(patched(R"(["a","b"])", R"(["c","d"])") == json::parse(R"(["c","d"])"));
}

TEST_CASE("an array patch replaces an object target") {
  CHECK(patched(R"({"a":"b"})", R"(["c"])") == json::parse(R"(["c"])"));
}

TEST_CASE("a null patch replaces the whole target with null") {
  CHECK(patched(R"({"a":"foo"})", R"(null)") == json(nullptr));
}

TEST_CASE("a string patch replaces the whole target") {
  CHECK(patched(R"({"a":"foo"})", R"("bar")") == json("bar"));
}

TEST_CASE("merge patch keeps existing null members it does not touch") {
  CHECK(patched(R"({"e":null})", R"({"a":1})") == json::parse(R"({"e":null,"a":1})"));
}

TEST_CASE("an object patch turns a non-object target into an object, dropping null members") {
  CHECK(patched(R"([1,2])", R"({"a":"b","c":null})") == json::parse(R"({"a":"b"})"));
}

TEST_CASE("merge patch creates nested objects without their null members") {
  CHECK(patched(R"({})", R"({"a":{"bb":{"ccc":null}}})") == json::parse(R"({"a":{"bb":{}}})"));
}

TEST_CASE("merge patch recurses through several levels of nested objects") {
  const json result =
      patched(R"({"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},
                                  "tags":["example","sample"],"content":"This will be unchanged",
                                  "deep":{"x":{"y":{"z":1,"keep":true}}}})",
              R"({"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},
                                  "tags":["example"],"deep":{"x":{"y":{"z":2,"new":[1]}}}})");
  CHECK(result == json::parse(R"({"title":"Hello!","author":{"givenName":"John"},"tags":["example"],
                                  "content":"This will be unchanged","phoneNumber":"+01-123-456-7890",
                                  "deep":{"x":{"y":{"z":2,"keep":true,"new":[1]}}}})"));
}

TEST_CASE("merge patch replaces a scalar member with a merged object") {
  CHECK(patched(R"({"a":1,"b":2})", R"({"a":{"x":{"y":null,"z":3}}})") ==
        json::parse(R"({"a":{"x":{"z":3}},"b":2})"));
}

TEST_CASE("an empty object patch leaves the target unchanged") {
  CHECK(patched(R"({"a":{"b":[1,2]},"c":null})", R"({})") == json::parse(R"({"a":{"b":[1,2]},"c":null})"));
}
