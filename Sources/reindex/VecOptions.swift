import ArgumentParser

/// Where sqlite-vec's loadable extension is, for the commands that build or read `vec_items`.
struct VecOptions: ParsableArguments {
    @Option(name: .customLong("sqlite-vec"), help: ArgumentHelp(
        "sqlite-vec's loadable extension (vec0.so); default: $SQLITE_VEC_PATH, else the sqlite-vec Python package.",
        valueName: "path"))
    var sqliteVec: String?
}
