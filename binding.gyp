{
  "variables": {
    "an_portable": "<!(node -p \"process.env.ASYNCORE_NATIVE_PORTABLE === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "asyncore_native",
      "sources": [
        "native/addon.cc",
        "native/constants.cc",
        "native/socket.cc",
        "native/select.cc",
        "native/poll.cc",
        "native/watcher.cc",
        "native/signals.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-O2"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/epoll.cc"],
          "defines": ["AN_HAVE_EPOLL"]
        }],
        ["an_portable==1", {
          "defines": ["AN_PORTABLE=1"]
        }],
        ["'<!(node -p \"process.env.ASYNCORE_NATIVE_SANITIZE || ''\")'=='1'", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined", "-O1", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      }
    }
  ]
}
