// Files: model plots, Keras .h5 model and weights files, resnet.cpp weights files.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "resnet/model.h"

namespace resnet {

// keras.utils.plot_model: renders the graph with Graphviz's dot layout. The format follows the
// extension of `path`: .png, .svg or .dot (the DOT text itself). Written atomically (a temporary
// file in the same folder, then a rename). Throws IoError naming the file on failure.
struct PlotOptions {
  bool show_shapes = false;  // output shapes on every box (Keras show_shapes)
  int dpi = 96;              // PNG resolution (Keras dpi)
};
void plot_model(const Model& model, const std::string& path, const PlotOptions& options = {});

// --- Model files (docs/file-formats.md).
//
// Every function below picks the format from the path's extension (case-insensitive), in one
// place: .h5 / .hdf5 are Keras HDF5 files, .keras Keras 3 native files (read by load_model; writing
// them is not supported yet), .onnx ONNX files (resnet/onnx.h), .pth / .pt /
// .pth.tar / .pt.tar PyTorch files (weights only: see load_torch_weights), anything else
// resnet.cpp's own .rnw weights file.
enum class FileFormat { KerasH5, Keras3, Onnx, Torch, Rnw };
FileFormat file_format(const std::string& path);

// keras model.save. A .onnx path is written by export_onnx (default options); a .rnw or PyTorch
// path is refused (IoError: those formats hold weights only, see save_weights). A .h5 path gets a
// Keras 2.4 HDF5 model file: root attributes keras_version ("2.4.0"), backend ("tensorflow"),
// model_config (Functional JSON) and, when the model is compiled, training_config (loss, metrics,
// optimizer_config); group model_weights (attributes layer_names, backend, keras_version; per layer
// a group with attribute weight_names and datasets <layer>/<layer>/<var>:0 in Keras shapes); with
// include_optimizer and a trained optimizer, group optimizer_weights (Adam/iter:0, then every slot
// as Keras TF2 names it: Adam/<layer>/<var>/m:0 for all variables, then all v, ...);
// options.attributes become root attributes prefixed "resnet_". Written atomically (a temporary
// file in the same folder, then a rename): a failed save leaves the previous file intact. Throws
// IoError naming the file.
struct SaveModelOptions {
  // Keras include_optimizer: the optimizer_weights group (when compiled and trained).
  bool include_optimizer = true;
  // resnet.cpp's metadata (zoo_model, input_shape, classes, preprocess, class_names, epoch, ...),
  // stored as "resnet_" root attributes (see read_model_attributes).
  std::map<std::string, std::string> attributes;
};
void save_model(Model& model, const std::string& path, const SaveModelOptions& options = {});

// keras.models.load_model. A .onnx path is read by import_onnx (`compile` ignored); a .rnw or
// PyTorch path is refused (IoError: build the model, then load_weights). HDF5 files written by
// Keras 2.x, Keras 3 (legacy .h5) or save_model: builds the graph from model_config (every class of
// the layer registry, resnet/config.h: InputLayer, Conv2D, BatchNormalization, Activation, ReLU,
// Add, ZeroPadding2D, Max/AveragePooling2D, GlobalAverage/GlobalMaxPooling2D, Flatten, Dense,
// Dropout, and the classes registered with register_layer_class), loads every weight, and when
// `compile` and the file has a training_config, compiles with its optimizer (Adam, AdamW, SGD,
// RMSprop; constant rate or ExponentialDecay/CosineDecay), loss and metrics and restores
// optimizer_weights (iterations and slots; matched by name, else by position as Keras does). Throws
// IoError naming the file and the layer, dataset or attribute: unknown layer class, missing
// dataset, shape mismatch, NaN weights, truncated or corrupt file.
Model load_model(const std::string& path, bool compile = true);

// resnet.cpp's metadata stored with a model: the "resnet_" root attributes of a .h5 file (prefix
// removed), or the attributes of a .rnw file or of a PyTorch file written by save_weights. Empty
// for a plain Keras or PyTorch file.
std::map<std::string, std::string> read_model_attributes(const std::string& path);

// --- Weights files. The format follows the extension:
//  .h5   Keras save_weights layout: root attributes layer_names, backend, keras_version; one group
//        per layer (attribute weight_names, datasets <layer>/<var>:0), layers in model order.
//        `attributes` are stored as "resnet_" root attributes; with include_optimizer the
//        optimizer state is stored too (group optimizer_weights, as in model files).
//  .pth  (.pt, .pth.tar, .pt.tar) a PyTorch state_dict (save_torch_state_dict), `attributes` in
//        its member archive/resnet_attributes.json; no optimizer state (include_optimizer is
//        ignored). Loading follows load_torch_weights: strict unless by_name or skip_mismatch.
//  other resnet.cpp's own ".rnw" file. Layout, little-endian: "RNWT", u32 version (1), u32
//        attribute count, then (u32 length, bytes) key/value pairs, u32 tensor count, then per
//        tensor (u32 length, name bytes, u32 rank, i64 dims, float32 data); parameters as
//        "layer/param", optimizer slots as "optimizer/<i>/<k>_<slot>".
// Written atomically.
struct SaveWeightsOptions {
  // The optimizer state too (.h5: group optimizer_weights; .rnw: "optimizer/..." tensors), so that
  // training can resume from the file (`resnet train --resume`).
  bool include_optimizer = false;
  // resnet.cpp's metadata, as in SaveModelOptions.
  std::map<std::string, std::string> attributes;
};
void save_weights(Model& model, const std::string& path, const SaveWeightsOptions& options = {});

// What load_weights did (optional output).
struct LoadWeightsReport {
  std::vector<std::string> loaded;   // layers whose weights were set
  std::vector<std::string> skipped;  // "layer: reason" (skip_mismatch)
  std::vector<std::string> missing;  // model layers with weights the file does not have (by_name)
  bool optimizer_restored = false;
};

struct LoadWeightsOptions {
  // .h5: false matches layers with weights in order (Keras topological loading; counts must
  // agree); true matches layers by name (model layers absent from the file keep their values,
  // file layers absent from the model are ignored). .rnw files always match by name.
  bool by_name = false;
  // Skip (and report) layers whose weight count or shapes differ instead of throwing.
  bool skip_mismatch = false;
  // Restore the optimizer state too when the file has one and the model is compiled with the
  // same optimizer class.
  bool optimizer = true;
  LoadWeightsReport* report = nullptr;
};

// Loads weights from a .h5 file (a Keras save_weights file, or the model_weights of a full model
// file, e.g. keras.applications *_notop.h5 or a file from save_model) or a .rnw file. Every
// tensor is checked (shape, NaN) before the model changes; errors throw IoError naming the file
// and the path inside it. Returns resnet.cpp's attributes (see read_model_attributes).
std::map<std::string, std::string> load_weights(Model& model, const std::string& path,
                                                const LoadWeightsOptions& options);
std::map<std::string, std::string> load_weights(Model& model, const std::string& path);

// --- PyTorch files (docs/pytorch-files.md): torch.save state_dicts and checkpoints, read without
// Python and without running anything from the file.
//
// Both formats of torch.save are read: the zip archive of PyTorch >= 1.6 (<name>/data.pkl and the
// storages <name>/data/<key>) and the legacy pickle stream (magic number, protocol, system
// info, the object, the storage keys, the raw storages). The pickle is interpreted without calls:
// only collections.OrderedDict, torch._utils._rebuild_tensor(_v2), _rebuild_parameter(_with_state),
// torch._tensor._rebuild_from_type_v2 and the torch.*Storage types are understood; every other
// global (an argparse.Namespace of training options, a numpy scalar) stays an inert placeholder,
// and a load fails, naming the global, only when a tensor needs it.
struct TorchTensorEntry {
  std::string name;   // the state_dict key (less the prefix in TorchStateDict::stripped_prefix)
  Tensor value;       // contiguous; float32 for float32/float16/bfloat16, F64, I64, I32 or U8
  std::string dtype;  // PyTorch's dtype: "float32", "float16", "float64", "int64", ...
};
struct TorchStateDict {
  std::vector<TorchTensorEntry> tensors;  // in the file's order
  // Numbers saved beside the state_dict in a checkpoint dict ("epoch", "best_prec1", ...;
  // one-element tensors included).
  std::map<std::string, double> scalars;
  std::string format;  // "zip" or "legacy"
  std::string key;     // where the state_dict was: "" (the saved object), "state_dict", ...
  std::string stripped_prefix;            // "module." (DataParallel) or "_orig_mod." when removed
  std::vector<std::string> placeholders;  // globals kept inert, e.g. "argparse.Namespace"
  std::string source;                     // the file it was read from
  const TorchTensorEntry* find(const std::string& name) const;
};
struct TorchLoadOptions {
  // The entry of a checkpoint dict that holds the state_dict. Empty: the saved object itself when
  // it holds tensors, else the first of "state_dict", "model_state_dict", "model", "net",
  // "network", "module" that does, else the only dict entry with tensors. A pickled nn.Module
  // (torch.save(model)) yields its state_dict (parameters and persistent buffers, as
  // Module.state_dict orders them).
  std::string key;
};
// Throws IoError naming the file (and the member, key or global at fault): not a PyTorch file, a
// TorchScript archive, truncated or damaged data, storage views past their storage, no tensors.
TorchStateDict load_torch_state_dict(const std::string& path, const TorchLoadOptions& options = {});

// Loads a PyTorch state_dict into a model built with PyTorch-compatible layer names: the zoo's
// resnet18/34, resnet20 ... resnet1202 (keys conv1, bn1, layer<s>.<b>.conv<k>/bn<k>,
// downsample.0/1 or shortcut.0/1, fc or linear), and any other model whose layers are named
// as save_torch_state_dict writes them. Convolution kernels OIHW -> HWIO, Linear (out, in) ->
// Dense (in, out), BatchNorm2d weight/bias/running_mean/running_var -> gamma/beta/moving_mean/
// moving_variance; num_batches_tracked is ignored. Everything is checked before the model changes.
struct TorchWeightsOptions {
  // true: every model weight must be in the file, every file tensor must be used, and shapes must
  // match (IoError listing each missing, unexpected and wrongly shaped key with the expected and
  // found shapes, in PyTorch's layout). false: loads what matches and reports the rest (as
  // load_state_dict(strict=False), shape mismatches included).
  bool strict = true;
  std::string key;  // TorchLoadOptions::key
  LoadWeightsReport* report = nullptr;
};
TorchStateDict load_torch_weights(Model& model, const std::string& path,
                                  const TorchWeightsOptions& options = {});
// The same from a state_dict already read (options.key is not used).
void load_torch_weights(Model& model, const TorchStateDict& state_dict,
                        const TorchWeightsOptions& options = {});
// torch.save(model.state_dict(), path) for a resnet.cpp model: a zip-format file with the keys of
// torch_key_for ("fc"/"downsample", or "linear"/"shortcut" for the CIFAR ResNets), OIHW and
// (out, in) layouts, num_batches_tracked 0 for each BatchNorm. torch.load(path,
// weights_only=True) reads it and torchvision's load_state_dict accepts it. Written atomically.
// save_weights(model, "x.pth") writes the same file with resnet.cpp's attributes beside it.
void save_torch_state_dict(const Model& model, const std::string& path);

// Layers that PyTorch computes without parameters: the fixed option-A shortcuts of the CIFAR
// ResNets ("<block>_shortcut_a", a non-trainable Conv2D). They are neither read nor written.
bool torch_parameter_free(const Layer& layer);

// The PyTorch state_dict key of a model weight ("conv2_block1_1_conv", "kernel") ->
// "layer1.0.conv1.weight"; `head` is "fc" or "linear", `projection` "downsample" or "shortcut".
std::string torch_key_for(const std::string& layer, const std::string& class_name,
                          const std::string& param, const std::string& head = "fc",
                          const std::string& projection = "downsample");

// --- Transfer learning (the tutorial's part 2).
struct TransferOptions {
  std::string base_model = "resnet50";  // zoo name (resnet50 has keras.applications layer names)
  Shape input_shape = {224, 224, 3};
  int64_t classes = 2;
  // Weights loaded by name into the base: a Keras weights file (keras.applications
  // *_notop.h5), a full model .h5 (Keras or ours) or a .rnw file. Empty: random initial weights.
  std::string weights_path;
  std::string freeze_until;  // freeze every layer up to and including this one (empty: none)
  double dropout = 0.2;      // 0: no Dropout layer
};
// The zoo model without its top (the layers up to its last (H, W, C) output, as
// include_top=False), its weights loaded by name from `weights_path` (every base layer with
// weights must be in the file, else IoError naming the file and the layer), then
// GlobalAveragePooling2D "avg_pool", Dropout(dropout) "top_dropout" and Dense(classes, softmax)
// "predictions" (suffixed _1, ... if the base already has such a name); layers up to
// `freeze_until` frozen (their BatchNormalization layers then run in inference mode).
Model transfer_model(const TransferOptions& options);

// Writes `data` to `path` atomically: a temporary file in the same folder, flushed, then renamed
// over `path`, so an interrupted write never destroys the previous file.
void write_file_atomic(const std::string& path, const std::string& data);

}  // namespace resnet
