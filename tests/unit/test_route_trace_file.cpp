// The routing trace file: what is written reads back the same, and every malformed line
// is refused with an error naming the file and the line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "expect_error.h"
#include "router/route_trace_file.h"
#include "test_paths.h"

namespace mst {
namespace {

class RouteTraceFile : public ::testing::Test {
protected:
    void SetUp() override { dir_ = test::make_temp_dir("route_trace"); }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string write(const std::string &text) {
        const std::string path = dir_ + "/t.trace";
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }
    std::string dir_;
};

TEST_F(RouteTraceFile, RoundTrips) {
    RouteTraceData t = RouteTraceData::sized(16, 2, 2, 3, {1, 2, 5});
    for (size_t i = 0; i < t.ids.size(); ++i) {
        t.ids[i] = int32_t((i * 7) % 16);
        t.weights[i] = 0.125f * float(i % 8);
    }
    t.ids[3] = -1;
    t.guesses[t.guess_at(1, 2, 1)] = 4;
    t.guesses[t.guess_at(1, 2, 1) + 1] = 9;
    t.guess_weights[t.guess_at(1, 2, 1)] = 0.75f;
    t.guess_weights[t.guess_at(1, 2, 1) + 1] = 0.25f;
    t.guesses[t.guess_at(2, 1, 2)] = 15;
    t.guesses[t.guess_at(2, 1, 2) + 1] = -1;
    const std::string path = dir_ + "/rt.trace";
    write_route_trace(path, t);
    const RouteTraceData r = read_route_trace(path);
    EXPECT_EQ(r.n_experts, 16);
    EXPECT_EQ(r.k, 2);
    EXPECT_EQ(r.predict_ahead, 2);
    EXPECT_EQ(r.n_tokens, 3);
    EXPECT_EQ(r.layers, t.layers);
    EXPECT_EQ(r.ids, t.ids);
    EXPECT_EQ(r.weights, t.weights);
    EXPECT_EQ(r.guesses, t.guesses);
    EXPECT_EQ(r.guess_weights, t.guess_weights);
}

// The router's top M (version 2): written only where recorded, read back the same; a trace
// without them stays version 1, which readers before version 2 read.
TEST_F(RouteTraceFile, RankedScoresRoundTripAsVersion2) {
    RouteTraceData t = RouteTraceData::sized(8, 2, 0, 2, {0, 4}, 4);
    for (size_t i = 0; i < t.ids.size(); ++i) t.ids[i] = int32_t(i % 8);
    for (size_t s = 0; s < 2; ++s)
        for (int32_t j = 0; j < 4; ++j) {
            t.ranked_ids[t.ranked_at(1, s) + size_t(j)] = int32_t(7 - j - int32_t(s));
            t.ranked_weights[t.ranked_at(1, s) + size_t(j)] = 1.0f / float(1 << j);  // exact in 5 digits
        }
    const std::string path = dir_ + "/ranked.trace";
    write_route_trace(path, t);
    std::ifstream in(path);
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first, "moestream-route-trace 2");
    const RouteTraceData r = read_route_trace(path);
    EXPECT_EQ(r.ranked, 4);
    EXPECT_EQ(r.ranked_ids, t.ranked_ids);  // token 0 recorded none: still -1
    EXPECT_EQ(r.ranked_weights, t.ranked_weights);
    EXPECT_EQ(r.ids, t.ids);

    t.ranked = 0;
    t.ranked_ids.clear();
    t.ranked_weights.clear();
    write_route_trace(path, t);
    std::ifstream in1(path);
    std::getline(in1, first);
    EXPECT_EQ(first, "moestream-route-trace 1");
    EXPECT_EQ(read_route_trace(path).ranked, 0);
}

TEST_F(RouteTraceFile, ReadsAHandWrittenTrace) {
    const RouteTraceData t = read_route_trace(write(
        "moestream-route-trace 1\n# a comment\nexperts 4 k 2 predict 1 tokens 2\nlayers 0 3\n"
        "c 1 1 3:0.25 0:0.75\nc 0 0 1:0.5 2:0.5\nc 1 0 0:1 -1:0\nc 0 1 2:0.6 3:0.4\np 1 1 1 3 2:0.125\n"));
    EXPECT_EQ(t.layers, (std::vector<int32_t>{0, 3}));
    EXPECT_EQ(t.ids, (std::vector<int32_t>{1, 2, 2, 3, 0, -1, 3, 0}));
    EXPECT_FLOAT_EQ(t.weights[t.at(1, 1) + 1], 0.75f);
    EXPECT_EQ(t.guesses, (std::vector<int32_t>{-1, -1, -1, -1, -1, -1, 3, 2}));
    // A bare guess (as traces without guess weights wrote) reads as weight 0, unknown.
    EXPECT_EQ(t.guess_weights, (std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0.125f}));
}

TEST_F(RouteTraceFile, RefusesMalformedFiles) {
    const std::string head = "moestream-route-trace 1\nexperts 4 k 2 predict 1 tokens 1\nlayers 0\n";
    test::expect_error([&] { read_route_trace(dir_ + "/missing"); }, MST_ERR_IO, {"missing"});
    test::expect_error([&] { read_route_trace(write("hello 1\n")); }, MST_ERR_BAD_FORMAT, {"line 1", "not a route trace"});
    test::expect_error([&] { read_route_trace(write("moestream-route-trace 3\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 1", "version"});
    // `ranked` is version 2's; r lines need it, M > k, and one r line per token and slot.
    test::expect_error([&] { read_route_trace(write("moestream-route-trace 1\nexperts 4 k 2 predict 0 tokens 1 ranked 3\n")); },
                       MST_ERR_BAD_FORMAT, {"line 2", "end of the line"});
    test::expect_error([&] { read_route_trace(write("moestream-route-trace 2\nexperts 4 k 2 predict 0 tokens 1 ranked 2\n")); },
                       MST_ERR_BAD_FORMAT, {"line 2", "ranked 2"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 1:1 2:0\nr 0 0 1:1 2:0 3:0\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 5", "no 'ranked M'"});
    const std::string head2 = "moestream-route-trace 2\nexperts 4 k 2 predict 0 tokens 1 ranked 3\nlayers 0\nc 0 0 1:1 2:0\n";
    test::expect_error([&] { read_route_trace(write(head2 + "r 0 0 1:1 2:0\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 5", "ends early"});
    test::expect_error([&] { read_route_trace(write(head2 + "r 0 0 1:1 2:0 -1:0\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 5", "expert -1"});
    test::expect_error([&] { read_route_trace(write(head2 + "r 0 0 1:1 2:0 3:0\nr 0 0 1:1 2:0 3:0\n")); },
                       MST_ERR_BAD_FORMAT, {"line 6", "second r line"});
    test::expect_error([&] { read_route_trace(write("moestream-route-trace 1\nexperts 4 k 9 predict 0 tokens 1\n")); },
                       MST_ERR_BAD_FORMAT, {"line 2", "k 9"});
    test::expect_error([&] { read_route_trace(write("moestream-route-trace 1\nexperts 4 k 2 predict 0 tokens 1\nlayers 3 1\n")); },
                       MST_ERR_BAD_FORMAT, {"line 3", "layer 1"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 4:0.5 1:0.5\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 4", "expert 4"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 1:0.5\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 4", "ends early"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 1:x 2:0\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 4", "not a number"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 1 2\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 4", "expert:weight"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 1:1 2:0\nc 0 0 1:1 2:0\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 5", "second c line"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 1:1 2:0\np 0 0 2 1 2\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 5", "layers ahead 2"});
    test::expect_error([&] { read_route_trace(write(head + "c 0 0 1:1 2:0 3:0\n")); }, MST_ERR_BAD_FORMAT,
                       {"line 4", "end of the line"});
    test::expect_error([&] { read_route_trace(write(head)); }, MST_ERR_BAD_FORMAT, {"no c line for token 0 slot 0"});
    test::expect_error([&] { read_route_trace(write(head + "x 0 0\n")); }, MST_ERR_BAD_FORMAT, {"unknown record 'x'"});
}

}  // namespace
}  // namespace mst
