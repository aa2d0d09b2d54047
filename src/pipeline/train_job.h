// The train and distill verbs as jobs (`slimlm train|distill` and recipe steps): options read
// from the registry's parameters and checked before any model loads, then finetune
// (pipeline/finetune.h) against a teacher loaded from its path, or on text the teacher writes
// (--black-box, pipeline/teacher_data.h). The trained weights stay in the model.
#pragma once
#include "core/dtype.h"
#include "pipeline/finetune.h"
#include "pipeline/job.h"
#include "pipeline/registry.h"
#include "pipeline/teacher_data.h"
#include <string>

namespace slimlm::pipeline {

struct TrainJobOptions {
  FinetuneJob job;                   // data, sequences, optimizer, LoRA, loss mix (no teacher model yet)
  std::string teacher;               // teacher model path (empty: none)
  std::string kd = "fkl";            // distillation loss name
  bool black_box = false;            // train on the teacher's generated text, cross-entropy only
  TeacherDataOptions bb;
  std::string bb_style = "continue";
  std::string type_name = "f32";     // storage type of the written matrices
  DType type = DType::F32;
  int64_t threads = 0;
};

// The options of a train or distill job (one-line Error on bad values). A distill job may leave
// the teacher empty here: the recipe runner fills in its source model, the CLI refuses it.
TrainJobOptions train_options(Verb v, const Args& a);
// Before the student loads: distill has a teacher; the teacher, data and ids files exist.
void check_train_inputs(Verb v, const TrainJobOptions& o);
// Trains `m` in place (loading the teacher from its path). The summary holds steps, tokens,
// seconds, tokens/s, parameters, mode, teacher, the loss log with loss_first / loss_last and the
// held-out losses (and black_box with --black-box; with feature or relation distillation,
// loss_parts and each log and held-out entry's logit / feature / relation; with --on-policy,
// on_policy: the sequences the student wrote and the generation time); the model is written as
// o.type.
Compressed train_model(Model& m, const TrainJobOptions& o);

}  // namespace slimlm::pipeline
