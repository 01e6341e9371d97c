#pragma once
// Project definitions the core tests and helpers share.

namespace kiln::test {

// One run, "unit", on tag "linux", of trigger "ci".
inline constexpr const char* one_run_project = R"(timeout: 5
triggers:
  - name: ci
    type: simple
    runs:
      - name: unit
        host-tag: linux
        script: test
scripts:
  test: |
    #!/bin/sh
    echo ok
)";

// Two runs on tag "linux": unit-test, and lint which chains smoke-lint.
inline constexpr const char* chained_project = R"(timeout: 5
triggers:
  - name: ci
    type: simple
    runs:
      - name: unit-test
        host-tag: linux
        script: hello
      - name: lint
        host-tag: linux
        script: hello
        triggers:
          - name: smoke
            run-names: "{name}-lint"
  - name: smoke
    type: simple
    runs:
      - name: smoke
        host-tag: linux
        script: hello
scripts:
  hello: |
    #!/bin/sh
    echo hi
)";

} // namespace kiln::test
