#!/usr/bin/env bash
# The second call: the other branches, on the same warm machine (callM4a.sh unpacked the payload).
LEAD=0 LLAMA=0 BRANCHES="lib-host prefill-host gpu-stream" RESULTS=results_b BUDGET=450 exec bash .gpu/merged9/callM4a.sh
