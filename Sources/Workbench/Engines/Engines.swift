// The glue between verbs and engines: one extension file per group (ModelGlue, StoreGlue, TrainingGlue,
// AnalysisGlue, TopGlue). Each function is a thin adapter: read the call's arguments, call the engine, turn its
// result into a value.

enum Engines {}
