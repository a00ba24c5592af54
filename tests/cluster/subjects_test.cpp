#include <catch2/catch.hpp>

#include "cluster/subjects.hpp"

using namespace sb::cluster;

TEST_CASE("subjects: wildcards match as NATS matches them", "[cluster][subjects]") {
  CHECK(subject_matches("a.b", "a.b"));
  CHECK_FALSE(subject_matches("a.b", "a.c"));
  CHECK(subject_matches("a.*", "a.b"));
  CHECK_FALSE(subject_matches("a.*", "a.b.c"));
  CHECK_FALSE(subject_matches("a.*", "a"));
  CHECK(subject_matches("a.>", "a.b"));
  CHECK(subject_matches("a.>", "a.b.c"));
  CHECK_FALSE(subject_matches("a.>", "a"));
  CHECK(subject_matches("*.b.>", "x.b.y.z"));
  CHECK_FALSE(subject_matches("a.b", "a.b.c"));
  CHECK_FALSE(subject_matches("a.b.c", "a.b"));
  CHECK_FALSE(subject_matches("", "a"));
}

TEST_CASE("subjects: invalid subjects and keys are refused", "[cluster][subjects]") {
  CHECK(valid_subject("sb.main.session.abc", false));
  CHECK_FALSE(valid_subject("sb..x", false));
  CHECK_FALSE(valid_subject(".x", false));
  CHECK_FALSE(valid_subject("x.", false));
  CHECK_FALSE(valid_subject("a b", false));
  CHECK_FALSE(valid_subject("a.*", false));
  CHECK(valid_subject("a.*", true));
  CHECK(valid_subject("a.>", true));
  CHECK_FALSE(valid_subject("a.>.b", true));
  CHECK_FALSE(valid_subject("a.b*", true));
  CHECK(valid_key("sessions.room-1"));
  CHECK(valid_key("a/b=c_d"));
  CHECK_FALSE(valid_key(".a"));
  CHECK_FALSE(valid_key("a."));
  CHECK_FALSE(valid_key("a b"));
  CHECK_FALSE(valid_key("a*"));
  CHECK_FALSE(valid_key(""));
}

TEST_CASE("subjects: any id encodes to one valid token and back", "[cluster][subjects]") {
  const std::vector<std::string> ids = {"room-1",   "a.b", "with space", "star*and>gt", "ünïcode",
                                       "=41",      std::string("nul\0x", 5), std::string(128, '.')};
  for (const auto& id : ids) {
    const auto token = encode_token(id);
    INFO(id << " -> " << token);
    CHECK(valid_key(token));
    CHECK(valid_subject(token, false));
    CHECK(decode_token(token) == id);
  }
  CHECK(encode_token("plain_ID-1") == "plain_ID-1");
  CHECK(encode_token("a.b") != encode_token("a=2Eb"));
  CHECK(decode_token("=41").empty());  // "A" is written plainly: one id, one token
  CHECK(decode_token("=4").empty());
  CHECK(decode_token("=zz").empty());
  CHECK(decode_token("a.b").empty());
}
