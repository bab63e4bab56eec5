#include "convert/shape_discovery.h"

#include <algorithm>
#include <deque>
#include <set>

#include "core/error.h"
#include "model/model_registry.h"
#include "storage/storage_tier.h"

namespace mst {
namespace {

// A checkpoint with no bytes. find() answers every name: an architecture asks find()
// whether an optional tensor or a form it prefers is there (DeepSeek's
// e_score_correction_bias, gpt-oss's MXFP4 experts, fused experts), and a synthesized
// model should have what the published checkpoints have. The answer is a tensor without
// a shape until require(name, shape) gives it one (and its place in an address space of
// its own, so that expert parts, which are byte ranges, can be told from resident
// tensors afterwards); one that is never required is not part of the model.
class InventingCheckpoint final : public Checkpoint {
public:
    const TensorInfo *find(std::string_view name) const override {
        if (const auto it = by_name_.find(name); it != by_name_.end()) return &tensors_[it->second];
        TensorInfo t;
        t.name = std::string(name);
        t.dtype = invented_dtype(name);
        return &add(std::move(t));
    }

    const TensorInfo &require(std::string_view name, std::initializer_list<int64_t> shape) const override {
        TensorInfo &t = const_cast<TensorInfo &>(*find(name));
        if (shaped_.count(t.name)) {
            if (!std::equal(t.shape.begin(), t.shape.end(), shape.begin(), shape.end()))
                fail(MST_ERR_INTERNAL, "the architecture asked for tensor '{}' as {} and as {}", name,
                     shape_to_string(t.shape), shape_to_string(std::vector<int64_t>(shape)));
            return t;
        }
        t.shape.assign(shape.begin(), shape.end());
        t.file_index = 0;
        t.offset = next_offset_;
        t.nbytes = uint64_t(t.numel()) * dtype_size(t.dtype);
        next_offset_ += t.nbytes;
        shaped_.insert(t.name);
        return t;
    }

    // The buffers stay unwritten: nothing is computed while a model is built.
    void read(const TensorInfo &, void *) const override {}
    std::vector<float> read_f32(const TensorInfo &t) const override { return std::vector<float>(size_t(t.numel()), 0.0f); }

    // The tensors the architecture required, in the order it did.
    std::vector<TensorInfo> required() const {
        std::vector<TensorInfo> out;
        for (const TensorInfo &t : tensors_)
            if (shaped_.count(t.name)) out.push_back(t);
        std::sort(out.begin(), out.end(), [](const TensorInfo &a, const TensorInfo &b) { return a.offset < b.offset; });
        return out;
    }

private:
    // MXFP4 blocks and scales are bytes, as gpt-oss publishes them (core/mxfp4.h);
    // everything else is BF16, which every architecture takes.
    static DType invented_dtype(std::string_view name) {
        const auto ends_with = [&](std::string_view suffix) {
            return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
        };
        return ends_with("_blocks") || ends_with("_scales") ? DType::U8 : DType::BF16;
    }

    const TensorInfo &add(TensorInfo t) const {
        by_name_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));  // a deque: references handed out stay valid
        return tensors_.back();
    }

    mutable std::deque<TensorInfo> tensors_;
    mutable std::map<std::string, size_t, std::less<>> by_name_;
    mutable std::set<std::string, std::less<>> shaped_;
    mutable uint64_t next_offset_ = 0;
};

}  // namespace

DiscoveredShapes discover_shapes(const ModelConfig &config) {
    InventingCheckpoint checkpoint;
    DiscoveredShapes shapes;
    std::map<std::string, WeightUse> uses;
    {
        const std::unique_ptr<Backend> backend = create_backend("cpu", 1);
        ExpertStoreFactory capture = [&](std::vector<std::vector<ExpertLayout>> layouts) {
            shapes.experts = layouts;
            return std::make_unique<ExpertStore>(open_storage({}, StorageOptions{}), std::move(layouts), 0, "none");
        };
        WeightUseRecorder record = [&](const std::string &name, WeightUse use) {
            const auto [it, inserted] = uses.emplace(name, use);
            if (!inserted && use == WeightUse::KeepStored) it->second = WeightUse::KeepStored;
        };
        ModelBuildContext ctx{config, checkpoint, *backend, capture, record};
        build_model(ctx);  // built only to see what it asks for, and dropped
    }

    // Tensors whose bytes hold expert parts belong to the expert section; each part is
    // named after the tensor it lies in.
    const std::vector<TensorInfo> tensors = checkpoint.required();
    const auto tensor_at = [&](uint64_t offset) -> const TensorInfo * {
        auto it = std::upper_bound(tensors.begin(), tensors.end(), offset,
                                   [](uint64_t v, const TensorInfo &t) { return v < t.offset; });
        if (it == tensors.begin()) return nullptr;
        --it;
        return offset < it->offset + it->nbytes ? &*it : nullptr;
    };
    std::set<std::string> expert_tensors;
    shapes.part_tensors.resize(shapes.experts.size());
    for (size_t l = 0; l < shapes.experts.size(); ++l)
        for (size_t e = 0; e < shapes.experts[l].size(); ++e)
            for (const ExpertMatrix &m : shapes.experts[l][e].parts) {
                const TensorInfo *t = m.nbytes() ? tensor_at(m.offset) : nullptr;
                if (t) expert_tensors.insert(t->name);
                if (e == 0) shapes.part_tensors[l].push_back(t ? t->name : std::string());
            }
    for (const TensorInfo &t : tensors) {
        if (expert_tensors.count(t.name)) continue;
        DiscoveredTensor d{t, std::nullopt};
        if (const auto it = uses.find(t.name); it != uses.end()) d.use = it->second;
        shapes.resident.push_back(std::move(d));
    }
    return shapes;
}

}  // namespace mst
