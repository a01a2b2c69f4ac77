// BatchLoader: worker threads assemble batches (gather, float conversion, augmentation,
// preprocessing) ahead of the training loop.
//
// Workers claim batch numbers in order but may finish out of order; finished batches wait in a
// map keyed by batch number and next() hands them out in sequence. At most `prefetch` batches
// past the one being consumed are claimed, which bounds memory. Each sample's augmentation uses
// its own generator seeded from (seed, epoch, sample index), so the output is the same whatever
// the number of workers or their timing.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "data/augment.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {

namespace {

uint64_t mix64(uint64_t z) {
  // splitmix64's finalizer: a bijective mix, so distinct inputs give distinct seeds.
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t sample_seed(uint64_t seed, int epoch, int64_t index) {
  return mix64(mix64(mix64(seed) ^ static_cast<uint64_t>(static_cast<int64_t>(epoch))) ^
               static_cast<uint64_t>(index));
}

// Thrown inside a worker when its epoch was abandoned or the loader is being destroyed.
struct Abandoned {};

}  // namespace

struct BatchLoader::Impl {
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };

  Dataset data;
  int64_t batch_size = 0;
  Preprocess pre;
  AugmentOptions aug;
  uint64_t seed = 0;
  int64_t prefetch = 1;

  std::mutex mu;
  std::condition_variable work_cv;   // workers: new work or stop
  std::condition_variable ready_cv;  // consumer: a batch finished
  bool stop = false;
  bool active = false;
  uint64_t generation = 0;  // bumped by start_epoch; stale work is dropped
  std::atomic<uint64_t> live_generation{0};
  std::atomic<bool> stopping{false};
  std::shared_ptr<const std::vector<int64_t>> order;
  int epoch = 0;
  int64_t num_batches = 0;
  int64_t next_claim = 0;
  int64_t next_consume = 0;
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> threads;

  bool has_work() const {
    return active && next_claim < num_batches && next_claim < next_consume + prefetch;
  }

  Batch make_batch(const std::vector<int64_t>& ord, int ep, int64_t b, uint64_t gen) const {
    const int64_t n = static_cast<int64_t>(ord.size());
    const int64_t begin = b * batch_size;
    const int64_t count = std::min(n, begin + batch_size) - begin;
    const Shape sample = data.sample_shape();
    const int64_t h = sample[0], w = sample[1], c = sample[2];
    const int64_t per = h * w * c;
    Batch out;
    out.x = Tensor::empty(sample.prepend(count));
    out.y = Tensor::empty(Shape{count}, DType::I64);
    float* x = out.x.f32();
    int64_t* y = out.y.data<int64_t>();
    const int64_t* labels = data.y.data<int64_t>();
    const bool augment = aug.enabled();
    std::vector<float> tmp(augment ? static_cast<size_t>(per) : 0);
    for (int64_t k = 0; k < count; ++k) {
      if (stopping.load(std::memory_order_relaxed) ||
          live_generation.load(std::memory_order_relaxed) != gen) {
        throw Abandoned{};
      }
      const int64_t idx = ord[static_cast<size_t>(begin + k)];
      float* dst = x + k * per;
      float* conv = augment ? tmp.data() : dst;
      if (data.x.dtype() == DType::U8) {
        const uint8_t* src = data.x.data<uint8_t>() + idx * per;
        for (int64_t i = 0; i < per; ++i) conv[i] = static_cast<float>(src[i]);
      } else {
        std::memcpy(conv, data.x.f32() + idx * per, static_cast<size_t>(per) * sizeof(float));
      }
      if (augment) {
        Rng rng(sample_seed(seed, ep, idx));
        augment_image(conv, dst, h, w, c, aug, rng);
      }
      y[k] = labels[idx];
    }
    pre.apply(out.x);
    return out;
  }

  void worker() {
    std::unique_lock lk(mu);
    for (;;) {
      work_cv.wait(lk, [&] { return stop || has_work(); });
      if (stop) return;
      const int64_t b = next_claim++;
      const uint64_t gen = generation;
      const auto ord = order;
      const int ep = epoch;
      lk.unlock();
      Slot slot;
      bool abandoned = false;
      try {
        slot.batch = make_batch(*ord, ep, b, gen);
      } catch (const Abandoned&) {
        abandoned = true;
      } catch (...) {
        slot.error = std::current_exception();
      }
      lk.lock();
      if (abandoned || gen != generation) continue;
      ready.emplace(b, std::move(slot));
      ready_cv.notify_all();
    }
  }
};

BatchLoader::BatchLoader(const Dataset& data, int64_t batch_size, Preprocess pre,
                         AugmentOptions aug, uint64_t seed, int workers, int prefetch)
    : impl_(std::make_unique<Impl>()) {
  const std::string where = data.source.empty() ? "dataset" : "'" + data.source + "'";
  if (batch_size <= 0) throw ConfigError(fmt::format("batch size {} must be positive", batch_size));
  if (!data.x.defined() || data.x.rank() != 4 ||
      (data.x.dtype() != DType::U8 && data.x.dtype() != DType::F32)) {
    throw ConfigError(
        fmt::format("{}: BatchLoader needs (N, H, W, C) uint8 or float32 images, got {}", where,
                    data.x.defined() ? data.x.str() : "none"));
  }
  if (!data.y.defined() || data.y.dtype() != DType::I64 || data.y.rank() != 1 ||
      data.y.shape()[0] != data.x.shape()[0]) {
    throw ConfigError(fmt::format("{}: BatchLoader needs ({},) int64 labels, got {}", where,
                                  data.x.shape()[0], data.y.defined() ? data.y.str() : "none"));
  }
  data_detail::check_augment_options(aug);
  // Fail here, not on a worker, when the preprocessing cannot take these images (e.g. 'caffe'
  // on one channel).
  Tensor probe(Shape{1, 1, 1, data.x.shape()[3]});
  pre.apply(probe);

  impl_->data = data;
  impl_->batch_size = batch_size;
  impl_->pre = std::move(pre);
  impl_->aug = aug;
  impl_->seed = seed;
  impl_->prefetch = std::max(1, prefetch);
  try {
    for (int i = 0; i < workers; ++i) impl_->threads.emplace_back([this] { impl_->worker(); });
  } catch (const std::system_error& e) {
    // The destructor does not run for a throwing constructor: stop the threads already started.
    {
      std::lock_guard lk(impl_->mu);
      impl_->stop = true;
    }
    impl_->work_cv.notify_all();
    for (auto& t : impl_->threads) t.join();
    throw Error(fmt::format("BatchLoader: cannot start worker threads: {}", e.what()));
  }
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->stop = true;
    impl_->stopping.store(true);
  }
  impl_->work_cv.notify_all();
  for (auto& t : impl_->threads) t.join();
}

void BatchLoader::start_epoch(std::vector<int64_t> order, int epoch) {
  const int64_t n = impl_->data.size();
  for (int64_t i : order) {
    if (i < 0 || i >= n) {
      throw ConfigError(fmt::format("BatchLoader: sample index {} is outside the {} samples of {}",
                                    i, n, impl_->data.source));
    }
  }
  const auto count = static_cast<int64_t>(order.size());
  {
    std::lock_guard lk(impl_->mu);
    impl_->generation++;
    impl_->live_generation.store(impl_->generation);
    impl_->order = std::make_shared<const std::vector<int64_t>>(std::move(order));
    impl_->epoch = epoch;
    impl_->num_batches = (count + impl_->batch_size - 1) / impl_->batch_size;
    impl_->next_claim = 0;
    impl_->next_consume = 0;
    impl_->ready.clear();
    impl_->active = true;
  }
  impl_->work_cv.notify_all();
}

int64_t BatchLoader::batches_in_epoch() const {
  std::lock_guard lk(impl_->mu);
  return impl_->num_batches;
}

bool BatchLoader::next(Batch& out) {
  std::unique_lock lk(impl_->mu);
  Impl& s = *impl_;
  if (!s.active) throw ConfigError("BatchLoader::next() called before start_epoch()");
  if (s.next_consume >= s.num_batches) return false;
  Impl::Slot slot;
  if (s.threads.empty()) {
    // No workers: build the batch on the caller's thread.
    const int64_t b = s.next_consume;
    const auto ord = s.order;
    lk.unlock();
    try {
      slot.batch = s.make_batch(*ord, s.epoch, b, s.generation);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lk.lock();
    s.next_claim = std::max(s.next_claim, b + 1);
  } else {
    s.ready_cv.wait(lk, [&] { return s.ready.count(s.next_consume) != 0; });
    auto node = s.ready.extract(s.next_consume);
    slot = std::move(node.mapped());
  }
  s.next_consume++;
  if (slot.error) {
    // The epoch ends at the failed batch; the caller may start another.
    s.next_consume = s.next_claim = s.num_batches;
    s.ready.clear();
    s.generation++;  // workers drop what they are still building
    s.live_generation.store(s.generation);
    lk.unlock();
    std::rethrow_exception(slot.error);
  }
  lk.unlock();
  s.work_cv.notify_all();
  out = std::move(slot.batch);
  return true;
}

}  // namespace resnet
