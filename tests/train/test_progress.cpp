// Keras Progbar lines and number formats (KERAS.md §5).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "resnet/train.h"

namespace resnet {
namespace {

const std::vector<std::string> kOrder = {"loss", "accuracy", "val_loss", "val_accuracy"};

TEST(ProgressFormat, FourDecimalsAboveOneThousandthElseScientific) {
  EXPECT_EQ(format_metric(0.4123), "0.4123");
  EXPECT_EQ(format_metric(0.86114), "0.8611");
  EXPECT_EQ(format_metric(1234.56789), "1234.5679");
  EXPECT_EQ(format_metric(-0.5), "-0.5000");
  EXPECT_EQ(format_metric(0.00012), "1.2000e-04");
  EXPECT_EQ(format_metric(0.001), "1.0000e-03");  // Keras: %.4f only when |v| > 1e-3
  EXPECT_EQ(format_metric(0.0011), "0.0011");
  EXPECT_EQ(format_metric(0.0), "0.0000e+00");  // as Keras prints a zero accuracy
  EXPECT_EQ(format_metric(std::nan("")), "nan");
  EXPECT_EQ(format_metric(-std::nan("")), "nan");
  EXPECT_EQ(format_metric(std::numeric_limits<double>::infinity()), "inf");
}

TEST(ProgressLine, FinishedEpochShowsTotalAndPerStepTime) {
  const Logs logs = {{"loss", 0.41234}, {"accuracy", 0.86111}};
  EXPECT_EQ(progress_line(34, 34, 12.0, logs, kOrder, false),
            "34/34 [==============================] - 12s 353ms/step - loss: 0.4123 - accuracy: "
            "0.8611");
}

TEST(ProgressLine, ValidationKeysFollowTheGivenOrderAndMissingKeysAreSkipped) {
  const Logs logs = {{"val_loss", 0.5}, {"loss", 2.19399}, {"accuracy", 0.47134}, {"lr", 0.1}};
  EXPECT_EQ(progress_line(34, 34, 1.0, logs, kOrder, false),
            "34/34 [==============================] - 1s 29ms/step - loss: 2.1940 - accuracy: "
            "0.4713 - val_loss: 0.5000");
}

TEST(ProgressLine, RunningBarHasArrowHeadAndEta) {
  // int(30 * 3 / 34) = 2 cells: "=>"; the step is right-aligned to the width of the total.
  EXPECT_EQ(progress_line(3, 34, 3.0, {{"loss", 1.5}}, kOrder, true),
            " 3/34 [=>............................] - ETA: 31s - loss: 1.5000");
  EXPECT_EQ(progress_line(17, 34, 1.7, {}, kOrder, true),
            "17/34 [==============>...............] - ETA: 1s");
  EXPECT_EQ(progress_line(0, 34, 0.0, {}, kOrder, true),
            " 0/34 [..............................] - ETA: 0s");
  EXPECT_EQ(progress_line(1, 5, 0.5, {}, kOrder, true),
            "1/5 [=====>........................] - ETA: 2s");
}

TEST(ProgressLine, EtaSwitchesToMinutesAndHoursAboveSixtyAndThreeThousandSixHundredSeconds) {
  EXPECT_EQ(progress_line(1, 61, 1.0, {}, {}, true).substr(38), " - ETA: 60s");
  EXPECT_EQ(progress_line(1, 100, 2.0, {}, {}, true).substr(40), " - ETA: 3:18");
  EXPECT_EQ(progress_line(1, 1000, 10.0, {}, {}, true).substr(42), " - ETA: 2:46:30");
}

TEST(ProgressLine, PerStepTimeUnits) {
  EXPECT_EQ(progress_line(2, 2, 5.0, {}, {}, false),
            "2/2 [==============================] - 5s 2s/step");
  EXPECT_EQ(progress_line(4, 4, 0.004, {}, {}, false),
            "4/4 [==============================] - 0s 1ms/step");
  EXPECT_EQ(progress_line(34, 34, 0.01, {}, {}, false),
            "34/34 [==============================] - 0s 294us/step");
  EXPECT_EQ(progress_line(120, 120, 0.96, {}, {}, false),
            "120/120 [==============================] - 1s 8ms/step");
}

TEST(ProgressLine, UnknownTotal) {
  EXPECT_EQ(progress_line(12, 0, 3.0, {{"loss", 0.25}}, {"loss"}, true),
            "     12/Unknown - 3s 250ms/step - loss: 0.2500");
}

}  // namespace
}  // namespace resnet
